//! Turning an applied transaction into the reply its client expects. The
//! reply's shape depends on the request's opcode (create vs create2, and each
//! op of a multi), which the owning shard remembers in a [`ReplyShape`].

use crate::core::tree::{Applied, OpResult};
use crate::proto::codes::{ErrorCode, OpCode};
use crate::proto::request::{MultiOp, Request};
use crate::proto::response::{OpReply, Response};

/// What the reply to a write must look like.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplyShape {
    pub op: OpCode,
    /// The opcode of each op, for a multi.
    pub multi_ops: Vec<OpCode>,
}

impl ReplyShape {
    /// The shape for a write request.
    pub fn of(op: OpCode, req: &Request) -> ReplyShape {
        let multi_ops = match req {
            Request::Multi(ops) => ops
                .iter()
                .map(|op| match op {
                    MultiOp::Create { op, .. } => *op,
                    MultiOp::Delete { .. } => OpCode::Delete,
                    MultiOp::SetData { .. } => OpCode::SetData,
                    MultiOp::Check { .. } => OpCode::Check,
                })
                .collect(),
            _ => Vec::new(),
        };
        ReplyShape { op, multi_ops }
    }
}

/// The reply for an applied write, or its error code.
pub fn write_reply(shape: &ReplyShape, applied: &Applied) -> Result<Response, ErrorCode> {
    match applied {
        Applied::Session => Ok(Response::Empty),
        Applied::Single(result) => single(shape.op, result),
        Applied::Multi(results) => {
            debug_assert_eq!(results.len(), shape.multi_ops.len(), "one result per multi op");
            Ok(Response::Multi(results.iter().zip(&shape.multi_ops).map(|(r, op)| multi_op(*op, r)).collect()))
        }
    }
}

fn single(op: OpCode, result: &OpResult) -> Result<Response, ErrorCode> {
    Ok(match result {
        OpResult::Error(code) => {
            return Err(ErrorCode::from_i32(*code).unwrap_or(ErrorCode::SystemError));
        }
        OpResult::Created { path, stat } if op == OpCode::Create => Response::Create(path.clone()),
        OpResult::Created { path, stat } => Response::Create2(path.clone(), *stat),
        OpResult::Deleted | OpResult::Checked => Response::Empty,
        OpResult::DataSet { stat } | OpResult::AclSet { stat } => Response::Stat(*stat),
    })
}

fn multi_op(op: OpCode, result: &OpResult) -> OpReply {
    match result {
        OpResult::Error(code) => OpReply::Error(ErrorCode::from_i32(*code).unwrap_or(ErrorCode::SystemError)),
        OpResult::Created { path, .. } if op == OpCode::Create => OpReply::Create(path.clone()),
        OpResult::Created { path, stat } => OpReply::Create2(path.clone(), *stat),
        OpResult::Deleted => OpReply::Delete,
        OpResult::DataSet { stat } | OpResult::AclSet { stat } => OpReply::SetData(*stat),
        OpResult::Checked => OpReply::Check,
    }
}
