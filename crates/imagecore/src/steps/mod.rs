//! One file per node kind, each implementing [`crate::graph::Step`].
