//! Reply bodies and notification frames: a typed [`Response`] and its jute
//! encoding, following `FinalRequestProcessor` and `MultiResponse`.

use super::codes::{ErrorCode, OpCode, xid};
use super::frame::write_reply;
use super::jute::JuteWriter;
use super::records::{Acl, MultiHeader, ReplyHeader, Stat};
use bytes::{Bytes, BytesMut};

/// One op's result inside a multi or multiRead reply.
#[derive(Debug, Clone, PartialEq)]
pub enum OpReply {
    /// Plain create: path only (`CreateResult(path)`).
    Create(String),
    /// create2, createContainer, createTTL: path and stat.
    Create2(String, Stat),
    Delete,
    SetData(Stat),
    Check,
    GetChildren(Vec<String>),
    GetData(Option<Bytes>, Stat),
    Error(ErrorCode),
}

impl OpReply {
    fn write(&self, w: &mut JuteWriter<'_>) {
        let (op, err) = match self {
            OpReply::Create(_) => (OpCode::Create, 0),
            OpReply::Create2(..) => (OpCode::Create2, 0),
            OpReply::Delete => (OpCode::Delete, 0),
            OpReply::SetData(_) => (OpCode::SetData, 0),
            OpReply::Check => (OpCode::Check, 0),
            OpReply::GetChildren(_) => (OpCode::GetChildren, 0),
            OpReply::GetData(..) => (OpCode::GetData, 0),
            OpReply::Error(code) => (OpCode::Error, code.code()),
        };
        MultiHeader { op: op as i32, done: false, err }.write(w);
        match self {
            OpReply::Create(path) => {
                w.ustring(path);
            }
            OpReply::Create2(path, stat) => {
                w.ustring(path);
                stat.write(w);
            }
            OpReply::Delete | OpReply::Check => {}
            OpReply::SetData(stat) => stat.write(w),
            OpReply::GetChildren(children) => {
                w.strings(children);
            }
            OpReply::GetData(data, stat) => {
                w.buffer(data.as_deref());
                stat.write(w);
            }
            OpReply::Error(code) => {
                w.int(code.code());
            }
        }
    }
}

/// A successful reply's body.
#[derive(Debug, Clone, PartialEq)]
pub enum Response {
    /// No body: delete, setWatches, removeWatches, checkWatches, auth, ping, closeSession.
    Empty,
    /// exists, setData, setACL.
    Stat(Stat),
    /// create.
    Create(String),
    /// create2, createContainer, createTTL.
    Create2(String, Stat),
    GetData(Option<Bytes>, Stat),
    GetAcl(Vec<Acl>, Stat),
    GetChildren(Vec<String>),
    GetChildren2(Vec<String>, Stat),
    /// sync: the path, echoed (null stays null).
    Path(Option<String>),
    /// multi and multiRead.
    Multi(Vec<OpReply>),
    GetEphemerals(Vec<String>),
    /// getAllChildrenNumber.
    Count(i32),
    /// addWatch replies with an ErrorResponse carrying 0.
    ErrorBody(i32),
    /// whoAmI: (scheme, user) pairs.
    WhoAmI(Vec<(String, String)>),
    /// SASL's answer (`SetSASLResponse`): the server's token, or null
    /// (no SASL server is configured, or the exchange failed).
    SaslToken(Option<Bytes>),
    /// A multiRead stopped by an op that is not a read: the results so far,
    /// under a MarshallingError header.
    MultiReadAborted(Vec<OpReply>),
}

impl Response {
    fn write(&self, w: &mut JuteWriter<'_>) {
        match self {
            Response::Empty => {}
            Response::Stat(stat) => stat.write(w),
            Response::Create(path) => {
                w.ustring(path);
            }
            Response::Path(path) => {
                w.buffer(path.as_deref().map(str::as_bytes));
            }
            Response::Create2(path, stat) => {
                w.ustring(path);
                stat.write(w);
            }
            Response::GetData(data, stat) => {
                w.buffer(data.as_deref());
                stat.write(w);
            }
            Response::GetAcl(acl, stat) => {
                Acl::write_list(acl, w);
                stat.write(w);
            }
            Response::GetChildren(children) | Response::GetEphemerals(children) => {
                w.strings(children);
            }
            Response::GetChildren2(children, stat) => {
                w.strings(children);
                stat.write(w);
            }
            Response::Multi(results) | Response::MultiReadAborted(results) => {
                for r in results {
                    r.write(w);
                }
                MultiHeader::END.write(w);
            }
            Response::Count(n) | Response::ErrorBody(n) => {
                w.int(*n);
            }
            Response::SaslToken(token) => {
                w.buffer(token.as_deref());
            }
            Response::WhoAmI(infos) => {
                w.count(infos.len());
                for (scheme, user) in infos {
                    w.ustring(scheme).ustring(user);
                }
            }
        }
    }
}

/// Appends a reply frame: `Ok` with a body, or an error code with none.
pub fn write_response(out: &mut BytesMut, xid: i32, zxid: i64, result: &Result<Response, ErrorCode>) {
    match result {
        Ok(resp) => {
            let err = if matches!(resp, Response::MultiReadAborted(_)) { ErrorCode::MarshallingError.code() } else { 0 };
            write_reply(out, ReplyHeader { xid, zxid, err }, |w| resp.write(w))
        }
        Err(code) => write_reply(out, ReplyHeader { xid, zxid, err: code.code() }, |_| {}),
    }
}

/// Appends a watch notification (xid -1, zxid -1, `WatcherEvent`).
pub fn write_notification(out: &mut BytesMut, event_type: i32, state: i32, path: &str) {
    write_reply(out, ReplyHeader { xid: xid::NOTIFICATION, zxid: -1, err: 0 }, |w| {
        w.int(event_type).int(state).ustring(path);
    });
}
