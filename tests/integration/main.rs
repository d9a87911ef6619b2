//! skysift's integration tests: one binary, a module per topic.

mod cli;
mod common;
mod deblend;
mod dual;
mod flags;
mod fuzz;
mod gpu;
mod inputs;
mod photometry;
mod reference;
mod reliability;
mod stream;
mod world;
