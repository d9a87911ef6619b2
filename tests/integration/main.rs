//! skysift's integration tests: one binary, a module per topic.

mod cli;
mod common;
mod gpu;
mod inputs;
mod reference;
