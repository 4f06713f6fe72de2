//! RPM payload streams (owned by the install work; this placeholder only keeps the module tree
//! compiling on the `reposolve` branch).
