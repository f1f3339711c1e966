//! The ZooKeeper client wire protocol: framing, jute records, codes.

pub mod codes;
pub mod encode;
pub mod frame;
pub mod jute;
pub mod records;
pub mod request;
pub mod response;
