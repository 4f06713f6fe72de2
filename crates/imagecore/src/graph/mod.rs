//! The build graph: [`compile`] a spec into nodes, compute [`key`]s, [`plan`] (cached / dirty and
//! why), and [`execute`] the dirty nodes.

pub mod compile;
pub mod execute;
pub mod key;
pub mod memtrace;
pub mod plan;
pub mod step;

pub use execute::{BuildOptions, BuildReport, Event, EventSink};
pub use plan::{NodeState, Plan, PlanNode};
pub use step::{ExportOptions, InputFile, Inputs, NodeKind, Output, Step, StepCtx};
