//! The client side of the protocol: encoding requests and decoding the reply
//! bodies a load generator needs. Used by `keeper-bench`, and checked here
//! against the server's own decoder.

use super::codes::OpCode;
use super::frame::write_frame;
use super::jute::{DecodeResult, JuteReader, JuteWriter};
use super::records::{Acl, MultiHeader, Stat};
use super::request::{CreateRequest, MultiOp, ReadOp, Request};
use bytes::{Bytes, BytesMut};

fn create_body(w: &mut JuteWriter<'_>, op: OpCode, req: &CreateRequest) {
    w.ustring(&req.path).buffer(req.data.as_deref());
    Acl::write_list(&req.acl, w);
    w.int(req.flags);
    if op == OpCode::CreateTtl {
        w.long(req.ttl);
    }
}

fn body(w: &mut JuteWriter<'_>, op: OpCode, req: &Request) {
    match req {
        Request::Create(c) => create_body(w, op, c),
        Request::Delete { path, version } | Request::Check { path, version } => {
            w.ustring(path).int(*version);
        }
        Request::DeleteContainer { path } | Request::GetAcl { path } | Request::GetAllChildrenNumber { path } => {
            w.ustring(path);
        }
        Request::Sync { path } => {
            w.buffer(path.as_deref().map(str::as_bytes));
        }
        Request::Exists { path, watch } | Request::GetData { path, watch } | Request::GetChildren { path, watch } => {
            w.ustring(path).boolean(*watch);
        }
        Request::SetData { path, data, version } => {
            w.ustring(path).buffer(data.as_deref()).int(*version);
        }
        Request::SetAcl { path, acl, version } => {
            w.ustring(path);
            Acl::write_list(acl, w);
            w.int(*version);
        }
        Request::Multi(ops) => {
            for op in ops {
                match op {
                    MultiOp::Create { op, req } => {
                        MultiHeader { op: *op as i32, done: false, err: -1 }.write(w);
                        create_body(w, *op, req);
                    }
                    MultiOp::Delete { path, version } => {
                        MultiHeader { op: OpCode::Delete as i32, done: false, err: -1 }.write(w);
                        w.ustring(path).int(*version);
                    }
                    MultiOp::SetData { path, data, version } => {
                        MultiHeader { op: OpCode::SetData as i32, done: false, err: -1 }.write(w);
                        w.ustring(path).buffer(data.as_deref()).int(*version);
                    }
                    MultiOp::Check { path, version } => {
                        MultiHeader { op: OpCode::Check as i32, done: false, err: -1 }.write(w);
                        w.ustring(path).int(*version);
                    }
                }
            }
            MultiHeader::END.write(w);
        }
        Request::MultiRead(ops) => {
            for op in ops {
                match op {
                    ReadOp::GetChildren { path } | ReadOp::GetData { path } => {
                        let code = if matches!(op, ReadOp::GetData { .. }) { OpCode::GetData } else { OpCode::GetChildren };
                        MultiHeader { op: code as i32, done: false, err: -1 }.write(w);
                        w.ustring(path).boolean(false);
                    }
                    ReadOp::NotARead { op } => {
                        MultiHeader { op: *op as i32, done: false, err: -1 }.write(w);
                        w.ustring("/").int(-1);
                    }
                }
            }
            MultiHeader::END.write(w);
        }
        Request::CheckWatches { path, watcher_type } | Request::RemoveWatches { path, watcher_type } => {
            w.ustring(path).int(*watcher_type);
        }
        Request::Auth { scheme, auth } => {
            w.int(0).ustring(scheme).buffer(Some(auth));
        }
        Request::SetWatches(sw) => {
            w.long(sw.relative_zxid);
            let lists = [&sw.data, &sw.exist, &sw.child, &sw.persistent, &sw.persistent_recursive];
            let count = if op == OpCode::SetWatches2 { 5 } else { 3 };
            for list in &lists[..count] {
                match list {
                    Some(items) => w.strings(items),
                    None => w.count_null(),
                };
            }
        }
        Request::GetEphemerals { prefix } => {
            w.buffer(prefix.as_deref().map(str::as_bytes));
        }
        Request::AddWatch { path, mode } => {
            w.ustring(path).int(*mode);
        }
        Request::Sasl { token } => {
            w.buffer(Some(token));
        }
        Request::Reconfig => {
            w.buffer(None).buffer(None).buffer(None).long(-1);
        }
        Request::Ping | Request::WhoAmI | Request::CloseSession | Request::Malformed => {}
    }
}

/// Appends a request frame (length, header, body).
pub fn request(out: &mut BytesMut, xid: i32, op: OpCode, req: &Request) {
    write_frame(out, |w| {
        w.int(xid).int(op as i32);
        body(w, op, req);
    });
}

/// Appends a ConnectRequest frame (with the readOnly byte), presenting the
/// newest zxid the client has seen.
pub fn connect(out: &mut BytesMut, last_zxid_seen: i64, session_id: i64, passwd: &[u8], timeout_ms: i32) {
    write_frame(out, |w| {
        w.int(0).long(last_zxid_seen).int(timeout_ms).long(session_id).buffer(Some(passwd)).boolean(false);
    });
}

/// A decoded ConnectResponse: (timeout, session id, password).
pub fn connect_response(frame: Bytes) -> DecodeResult<(i32, i64, Bytes)> {
    let mut r = JuteReader::new(frame);
    let _protocol = r.int()?;
    let timeout = r.int()?;
    let session = r.long()?;
    let passwd = r.buffer()?.unwrap_or_default();
    Ok((timeout, session, passwd))
}

/// Reads a getData reply body: data and stat.
pub fn get_data_response(r: &mut JuteReader) -> DecodeResult<(Option<Bytes>, Stat)> {
    Ok((r.buffer()?, Stat::read(r)?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::frame::{self, FrameCheck};
    use crate::proto::records::{Acl, Id};
    use crate::proto::request::{SetWatchesRequest, decode};

    fn open_acl() -> Vec<Acl> {
        vec![Acl { perms: crate::proto::codes::perms::ALL, id: Id::new("world", "anyone") }]
    }

    #[test]
    fn encoder_round_trips_through_the_server_decoder() {
        let create = CreateRequest { path: "/a".into(), data: Some(Bytes::from_static(b"d")), acl: open_acl(), flags: 2, ttl: 0 };
        let ttl = CreateRequest { ttl: 500, flags: 5, ..create.clone() };
        let cases = vec![
            (OpCode::Create2, Request::Create(create.clone())),
            (OpCode::CreateTtl, Request::Create(ttl)),
            (OpCode::GetData, Request::GetData { path: "/a".into(), watch: true }),
            (OpCode::SetData, Request::SetData { path: "/a".into(), data: None, version: 3 }),
            (OpCode::SetAcl, Request::SetAcl { path: "/a".into(), acl: open_acl(), version: -1 }),
            (
                OpCode::Multi,
                Request::Multi(vec![
                    MultiOp::Create { op: OpCode::Create, req: create },
                    MultiOp::Check { path: "/a".into(), version: 1 },
                    MultiOp::Delete { path: "/a".into(), version: -1 },
                ]),
            ),
            (OpCode::MultiRead, Request::MultiRead(vec![ReadOp::GetData { path: "/x".into() }, ReadOp::GetChildren { path: "/".into() }])),
            (
                OpCode::SetWatches2,
                Request::SetWatches(SetWatchesRequest {
                    relative_zxid: 9,
                    data: Some(vec!["/d".into()]),
                    exist: None,
                    child: Some(vec![]),
                    persistent: Some(vec![]),
                    persistent_recursive: Some(vec!["/r".into()]),
                }),
            ),
            (OpCode::Reconfig, Request::Reconfig),
            (OpCode::AddWatch, Request::AddWatch { path: "/w".into(), mode: 1 }),
            (OpCode::Ping, Request::Ping),
        ];
        for (op, req) in cases {
            let mut out = BytesMut::new();
            request(&mut out, 7, op, &req);
            let FrameCheck::Ready(len) = frame::check(&out, 1 << 20) else { panic!("{op:?} frame") };
            let (header, body) = decode(frame::take(&mut out, len)).unwrap();
            assert_eq!(header.xid, 7);
            assert_eq!(body.unwrap(), (op, req));
        }
    }
}
