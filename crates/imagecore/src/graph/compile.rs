//! Compile a [`Spec`] into the build graph: one node per stage the spec needs, wired in xCAT's
//! order (install → otherpkgs → files → postinstall → sync → trim → pack, kernel → initrd).

use petgraph::graph::{DiGraph, NodeIndex};

use crate::error::Error;
use crate::graph::step::Step;
use crate::lists::{Exlist, Pkglist, Synclist};
use crate::spec::{PkgDir, Spec};
use crate::steps;

/// One node of the graph: a name (unique in the graph, e.g. `repo:0`) and its step.
pub struct Node {
    /// Unique node name; `plan` and `--target` use it.
    pub name: String,
    /// The stage.
    pub step: Box<dyn Step>,
}

/// The build graph: edges go from parent to child; a node's parents are its incoming edges in
/// insertion order.
pub struct Graph {
    /// The DAG.
    pub dag: DiGraph<Node, ()>,
}

impl Graph {
    /// Parents of `n` in the order they were added.
    pub fn parents(&self, n: NodeIndex) -> Vec<NodeIndex> {
        let mut v: Vec<_> = self
            .dag
            .edges_directed(n, petgraph::Direction::Incoming)
            .map(|e| (e.id(), petgraph::visit::EdgeRef::source(&e)))
            .collect();
        v.sort_by_key(|(id, _)| id.index());
        v.into_iter().map(|(_, s)| s).collect()
    }

    /// Find a node by name.
    pub fn find(&self, name: &str) -> Option<NodeIndex> {
        self.dag.node_indices().find(|&i| self.dag[i].name == name)
    }

    /// Nodes in a topological order (parents first; ties in insertion order).
    pub fn order(&self) -> Vec<NodeIndex> {
        // insertion order is already topological by construction (compile only adds edges
        // from earlier nodes), which keeps plan output stable.
        self.dag.node_indices().collect()
    }

    fn add(
        &mut self,
        name: impl Into<String>,
        step: Box<dyn Step>,
        parents: &[NodeIndex],
    ) -> NodeIndex {
        let n = self.dag.add_node(Node {
            name: name.into(),
            step,
        });
        for p in parents {
            self.dag.add_edge(*p, n, ());
        }
        n
    }
}

use petgraph::visit::EdgeRef as _;

/// Build the graph for a spec. Parses every list file (errors name file:line).
pub fn compile(spec: &Spec) -> Result<Graph, Error> {
    let mut g = Graph {
        dag: DiGraph::new(),
    };
    let env = &spec.osimage.environvar;

    // --- the root tree: capture, or repos → resolve → install → otherpkgs
    let mut tree = if let Some(src) = &spec.source {
        g.add(
            "capture",
            Box::new(steps::capture::Capture::new(spec, src)),
            &[],
        )
    } else {
        let repos = spec.repos.as_ref();
        let mut repo_nodes = Vec::new();
        for (i, dir) in repos
            .map(|r| r.pkgdir.as_slice())
            .unwrap_or(&[])
            .iter()
            .enumerate()
        {
            let mut parents = Vec::new();
            if let PkgDir::Path(p) = &dir.value
                && p.extension().is_some_and(|e| e.eq_ignore_ascii_case("iso"))
            {
                parents.push(g.add(
                    format!("copycds:{i}"),
                    Box::new(steps::copycds::Copycds::new(spec, dir)),
                    &[],
                ));
            }
            repo_nodes.push(g.add(
                format!("repo:{i}"),
                Box::new(steps::repo::Repo::new(spec, i, dir)),
                &parents,
            ));
        }
        let pkgs = spec.packages.as_ref();
        let pkglist = match pkgs {
            Some(p) => Pkglist::load(&p.pkglist, env)?,
            None => Pkglist::default(),
        };
        let resolve = g.add(
            "resolve",
            Box::new(steps::resolve::Resolve::new(spec, pkglist)),
            &repo_nodes,
        );
        let mut parents = vec![resolve];
        parents.extend(&repo_nodes);
        let mut t = g.add(
            "install",
            Box::new(steps::install::Install::new(spec)),
            &parents,
        );
        if let Some(p) = pkgs
            && !p.otherpkglist.is_empty()
        {
            let other = Pkglist::load(&p.otherpkglist, env)?;
            let mut parents = vec![t, resolve];
            parents.extend(&repo_nodes);
            if let Some(dir) = repos.and_then(|r| r.otherpkgdir.as_ref()) {
                let i = repo_nodes.len();
                parents.push(g.add(
                    "otherrepo",
                    Box::new(steps::repo::Repo::new(spec, i, dir)),
                    &[],
                ));
            }
            t = g.add(
                "otherpkgs",
                Box::new(steps::otherpkgs::Otherpkgs::new(spec, other)),
                &parents,
            );
        }
        t
    };

    // --- kernel (from the package tree, kerneldir, or the captured tree)
    let want_kernel = spec.kernel.is_some()
        || spec
            .source
            .as_ref()
            .is_some_and(|s| steps::kernel::tree_has_kernel(&s.rootimg.value));
    let kernel = if want_kernel {
        // a kerneldir kernel does not read the image tree: no parent, so image changes never
        // re-unpack it
        let from_dir = spec.kernel.as_ref().is_some_and(|k| k.kerneldir.is_some());
        Some(g.add(
            "kernel",
            Box::new(steps::kernel::Kernel::new(spec)),
            if from_dir {
                &[]
            } else {
                std::slice::from_ref(&tree)
            },
        ))
    } else {
        None
    };

    // --- customisation, in xCAT's order
    // a kerneldir kernel is installed into the image here (xCAT installs it into the rootimg)
    let mut files_parents = vec![tree];
    if spec.kernel.as_ref().is_some_and(|k| k.kerneldir.is_some()) {
        files_parents.extend(kernel);
    }
    tree = g.add(
        "files",
        Box::new(steps::files::Files::new(spec)),
        &files_parents,
    );
    if !spec.image.postinstall.is_empty() {
        let mut parents = vec![tree];
        parents.extend(kernel);
        tree = g.add(
            "postinstall",
            Box::new(steps::postinstall::Postinstall::new(spec)),
            &parents,
        );
    }
    if !spec.image.synclists.is_empty() {
        let sl = Synclist::load_with_env(&spec.image.synclists, env)?;
        tree = g.add("sync", Box::new(steps::sync::Sync::new(spec, sl)), &[tree]);
    }
    if let Some(k) = kernel {
        let part = g.add(
            "initrd-tree",
            Box::new(steps::initrd_tree::InitrdTree),
            &[k, tree],
        );
        let sel = g.add(
            "initrd-inputs",
            Box::new(steps::initrd::InitrdInputs::new(spec)),
            &[k, part],
        );
        g.add("initrd", Box::new(steps::initrd::Initrd::new(spec)), &[sel]);
    }
    if !spec.image.exlist.is_empty() {
        let ex = Exlist::load(&spec.image.exlist)?;
        tree = g.add("trim", Box::new(steps::trim::Trim::new(ex)), &[tree]);
    }
    g.add("pack", Box::new(steps::pack::Pack::new(spec)), &[tree]);
    Ok(g)
}
