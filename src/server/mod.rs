//! The operator's side: the command line and the data inspection tools.

pub mod cli;
pub mod import;
pub mod inspect;
