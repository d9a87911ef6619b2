//! skysift's integration tests: one binary, a module per topic.

mod cli;
mod common;
mod inputs;
mod reference;
