//! Answering reads from a tree replica: ZooKeeper's `FinalRequestProcessor`
//! for every request that does not change the tree, including the watch
//! operations (which change only this replica's watch registry).
//!
//! Rules that matter (ZooKeeper 3.8): reads do not validate paths; exists has
//! no ACL check but rejects NUL and leaves a watch even on a missing node;
//! getData/getChildren check READ and leave no watch on a missing node;
//! getACL needs READ or ADMIN and masks digest ids without ADMIN.

use crate::core::acl;
use crate::core::path;
use crate::core::tree::DataTree;
use crate::core::tree::watches::{ConnId, Notification, WatchKind, WatchRegistry};
use crate::proto::codes::{ErrorCode, EventType, OpCode, add_watch_mode, perms, watcher_type};
use crate::proto::records::{Acl, Id};
use crate::proto::request::{ReadOp, Request, SetWatchesRequest};
use crate::proto::response::{OpReply, Response};

/// Who is reading.
pub struct ReadContext<'a> {
    pub conn: ConnId,
    pub session_id: i64,
    pub ids: &'a [Id],
}

/// Answers a read (or watch) request. Notifications that setWatches fires at
/// once are appended to `notes`; they must be sent before the reply.
pub fn read(
    tree: &DataTree,
    watches: &mut WatchRegistry,
    op: OpCode,
    req: &Request,
    ctx: &ReadContext<'_>,
    notes: &mut Vec<Notification>,
) -> Result<Response, ErrorCode> {
    match req {
        Request::Ping => Ok(Response::Empty),
        Request::Exists { path, watch } => {
            if path.contains('\0') {
                return Err(ErrorCode::BadArguments);
            }
            if *watch {
                watches.add_data(path::normalize_read(path), ctx.conn);
            }
            tree.get(path).map(|n| Response::Stat(n.stat())).ok_or(ErrorCode::NoNode)
        }
        Request::GetData { path, watch } => {
            let node = tree.get(path).ok_or(ErrorCode::NoNode)?;
            acl::check(&node.acl, perms::READ, ctx.ids)?;
            if *watch {
                watches.add_data(path::normalize_read(path), ctx.conn);
            }
            Ok(Response::GetData(node.data_bytes(), node.stat()))
        }
        Request::GetAcl { path } => {
            let node = tree.get(path).ok_or(ErrorCode::NoNode)?;
            acl::check(&node.acl, perms::READ | perms::ADMIN, ctx.ids)?;
            let list = if acl::allowed(&node.acl, perms::ADMIN, ctx.ids) { node.acl.to_vec() } else { masked(&node.acl) };
            Ok(Response::GetAcl(list, node.stat()))
        }
        Request::GetChildren { path, watch } => {
            let node = tree.get(path).ok_or(ErrorCode::NoNode)?;
            acl::check(&node.acl, perms::READ, ctx.ids)?;
            if *watch {
                watches.add_child(path::normalize_read(path), ctx.conn);
            }
            let children = node.children.names().map(str::to_string).collect();
            Ok(if op == OpCode::GetChildren2 { Response::GetChildren2(children, node.stat()) } else { Response::GetChildren(children) })
        }
        Request::GetAllChildrenNumber { path } => {
            let node = tree.get(path).ok_or(ErrorCode::NoNode)?;
            acl::check(&node.acl, perms::READ, ctx.ids)?;
            Ok(Response::Count(tree.descendant_count(path) as i32))
        }
        Request::GetEphemerals { prefix } => {
            let prefix = prefix.as_deref().unwrap_or("");
            let all = prefix.trim().is_empty() || prefix.trim() == "/";
            Ok(Response::GetEphemerals(tree.ephemerals_of(ctx.session_id).filter(|p| all || p.starts_with(prefix)).map(|p| p.to_string()).collect()))
        }
        Request::MultiRead(ops) => {
            let mut results = Vec::with_capacity(ops.len());
            for op in ops {
                if matches!(op, ReadOp::NotARead { .. }) {
                    return Ok(Response::MultiReadAborted(results));
                }
                results.push(read_op(tree, op, ctx));
            }
            Ok(Response::Multi(results))
        }
        Request::AddWatch { path, mode } => {
            match *mode {
                add_watch_mode::PERSISTENT => watches.add_persistent(path, ctx.conn),
                add_watch_mode::PERSISTENT_RECURSIVE => watches.add_recursive(path, ctx.conn),
                _ => return Err(ErrorCode::MarshallingError),
            }
            Ok(Response::ErrorBody(0))
        }
        Request::RemoveWatches { path, watcher_type } => {
            let kind = watch_kind(*watcher_type)?;
            if watches.remove(path, ctx.conn, kind) { Ok(Response::Empty) } else { Err(ErrorCode::NoWatcher) }
        }
        Request::CheckWatches { path, watcher_type } => {
            let kind = watch_kind(*watcher_type)?;
            // ZooKeeper 3.8 walks the path's parents here and fails on a path without a slash.
            if !path.is_empty() && !path.contains('/') {
                return Err(ErrorCode::MarshallingError);
            }
            if watches.contains(path, ctx.conn, kind) { Ok(Response::Empty) } else { Err(ErrorCode::NoWatcher) }
        }
        Request::SetWatches(sw) => set_watches(tree, watches, sw, ctx.conn, notes).map(|()| Response::Empty),
        Request::WhoAmI => Ok(Response::WhoAmI(ctx.ids.iter().map(|id| (id.scheme.clone(), user_name(id))).collect())),
        other => unreachable!("read called with a write request: {other:?}"),
    }
}

/// The user part of an identity (`AuthenticationProvider.getUserName`).
fn user_name(id: &Id) -> String {
    match id.scheme.as_str() {
        "digest" => id.id.split(':').next().unwrap_or("").to_string(),
        "ip" => id.id.clone(),
        _ => String::new(),
    }
}

/// 3.8 accepts Children, Data and Any; other values fail to decode there.
fn watch_kind(t: i32) -> Result<WatchKind, ErrorCode> {
    match t {
        watcher_type::CHILDREN => Ok(WatchKind::Children),
        watcher_type::DATA => Ok(WatchKind::Data),
        watcher_type::ANY => Ok(WatchKind::Any),
        _ => Err(ErrorCode::MarshallingError),
    }
}

/// Digest ids shown as `user:x` to readers without ADMIN.
fn masked(list: &[Acl]) -> Vec<Acl> {
    list.iter()
        .map(|a| {
            let mut a = a.clone();
            if a.id.scheme == "digest" {
                let user = a.id.id.split(':').next().unwrap_or("").to_string();
                a.id.id = format!("{user}:x");
            }
            a
        })
        .collect()
}

fn read_op(tree: &DataTree, op: &ReadOp, ctx: &ReadContext<'_>) -> OpReply {
    let (path, is_data) = match op {
        ReadOp::GetChildren { path } => (path, false),
        ReadOp::GetData { path } => (path, true),
        ReadOp::NotARead { .. } => unreachable!("multiRead stops before a non-read op"),
    };
    let Some(node) = tree.get(path) else {
        return OpReply::Error(ErrorCode::NoNode);
    };
    if let Err(code) = acl::check(&node.acl, perms::READ, ctx.ids) {
        return OpReply::Error(code);
    }
    if is_data { OpReply::GetData(node.data_bytes(), node.stat()) } else { OpReply::GetChildren(node.children.names().map(str::to_string).collect()) }
}

/// Re-registers a reconnecting client's watches (`DataTree.setWatches`):
/// a watch whose node changed after `relative_zxid` fires at once instead.
fn set_watches(tree: &DataTree, watches: &mut WatchRegistry, sw: &SetWatchesRequest, conn: ConnId, notes: &mut Vec<Notification>) -> Result<(), ErrorCode> {
    let mut fire = |kind: EventType, path: &str| notes.push(Notification { conn, kind, path: path.to_string() });
    let list = |l: &Option<Vec<String>>| l.clone().ok_or(ErrorCode::MarshallingError);
    for p in &list(&sw.data)? {
        match tree.get(p) {
            None => fire(EventType::NodeDeleted, p),
            Some(n) if n.persisted.mzxid > sw.relative_zxid => fire(EventType::NodeDataChanged, p),
            Some(_) => watches.add_data(p, conn),
        }
    }
    for p in &list(&sw.exist)? {
        match tree.get(p) {
            Some(_) => fire(EventType::NodeCreated, p),
            None => watches.add_data(p, conn),
        }
    }
    for p in &list(&sw.child)? {
        match tree.get(p) {
            None => fire(EventType::NodeDeleted, p),
            Some(n) if n.persisted.pzxid > sw.relative_zxid => fire(EventType::NodeChildrenChanged, p),
            Some(_) => watches.add_child(p, conn),
        }
    }
    for p in &list(&sw.persistent)? {
        watches.add_persistent(p, conn);
    }
    for p in &list(&sw.persistent_recursive)? {
        watches.add_recursive(p, conn);
    }
    Ok(())
}
