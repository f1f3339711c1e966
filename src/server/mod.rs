//! The operator's side: configuration, four-letter words, the command line.

pub mod cli;
pub mod config;
pub mod fourlw;
pub mod inspect;
