//! Preparing writes: request + committed tree + outstanding changes + who
//! is asking → transaction body. ZooKeeper's `PrepRequestProcessor`, check
//! for check and in the same order, so the same request fails with the
//! same error code.
//!
//! Prep reads nodes through a [`View`]: the changes of the request itself
//! (inside a multi, later ops see earlier ops' effects), then the
//! [`Outstanding`] changes of transactions prepared but not yet committed,
//! then the committed tree. What a successful request changed comes back
//! in [`Prepared::changes`], for the caller to push onto the outstanding
//! changes under the transaction's zxid. A failed request changes nothing.

use crate::core::acl;
use crate::core::outstanding::{Changes, Outstanding, Record};
use crate::core::path;
use crate::core::tree::{self, DataTree};
use crate::core::txn::{NodeKind, TxnBody, TxnOp};
use crate::proto::codes::{ErrorCode, OpCode, perms};
use crate::proto::records::Id;
use crate::proto::request::{CreateMode, CreateRequest, MultiOp, Request};
use std::sync::Arc;

/// The largest TTL ZooKeeper accepts, in milliseconds (`EphemeralType.TTL`: 40 bits).
pub const TTL_MAX_MS: i64 = (1 << 40) - 1;

/// Who is asking, and the server settings that shape the answer.
pub struct PrepContext<'a> {
    pub session_id: i64,
    /// The connection's identities (ip, digest, super).
    pub ids: &'a [Id],
    /// `extendedTypesEnabled`: TTL nodes allowed.
    pub extended_types: bool,
    /// `enforceQuota`: hard quota limits refuse creates and setData.
    pub enforce_quota: bool,
    /// The ACL schemes this server has providers for beyond world, digest and ip.
    pub schemes: acl::Schemes,
}

/// A prepared request: the transaction body, and what it changed for the
/// next prep to see (empty when it failed).
#[derive(Debug)]
pub struct Prepared {
    pub body: TxnBody,
    pub changes: Changes,
}

/// The committed tree, under the outstanding changes, under the request's own.
struct View<'a> {
    tree: &'a DataTree,
    outstanding: &'a Outstanding,
    /// `None` marks a node this request deleted.
    changes: Changes,
}

impl View<'_> {
    fn get(&self, path: &str) -> Result<Record, ErrorCode> {
        let found = match self.changes.get(path).or_else(|| self.outstanding.get(path)) {
            Some(change) => change.clone(),
            None => self.tree.get(path).map(Record::of),
        };
        found.ok_or(ErrorCode::NoNode)
    }

    fn exists(&self, path: &str) -> bool {
        self.get(path).is_ok()
    }

    fn set(&mut self, path: &str, record: Option<Record>) {
        self.changes.insert(Arc::from(path), record);
    }
}

/// Prepares a write request into a transaction body. Failures become
/// `Error` ops: they still take a zxid, as in ZooKeeper.
pub fn prep(tree: &DataTree, outstanding: &Outstanding, op: OpCode, req: &Request, ctx: &PrepContext<'_>) -> Prepared {
    let mut view = View { tree, outstanding, changes: Changes::new() };
    let body = match req {
        Request::Multi(ops) => TxnBody::Multi(prep_multi(&mut view, ops, ctx)),
        _ => TxnBody::Single(prep_single(&mut view, op, req, ctx).unwrap_or_else(|code| TxnOp::Error { code: code.code() })),
    };
    debug_assert!(!body_failed(&body) || view.changes.is_empty(), "a failed request changes nothing");
    Prepared { body, changes: view.changes }
}

/// Prepares a closeSession: it deletes every ephemeral node the session
/// owns in the view (committed ones not deleted since, and outstanding
/// ones), which the next prep must see gone.
pub fn prep_close_session(tree: &DataTree, outstanding: &Outstanding, session_id: i64) -> Prepared {
    let mut view = View { tree, outstanding, changes: Changes::new() };
    let mut owned: Vec<Arc<str>> = tree.ephemerals_of(session_id).chain(outstanding.ephemerals_of(session_id)).cloned().collect();
    owned.sort();
    owned.dedup();
    for path in owned {
        let still_owned = view.get(&path).is_ok_and(|r| r.kind == NodeKind::Ephemeral { session_id });
        if !still_owned {
            continue;
        }
        let parent_path = path::split(&path).map(|(parent, _)| parent).expect("an ephemeral node has a parent");
        let mut parent = view.get(parent_path).expect("an existing node's parent exists");
        parent.num_children -= 1;
        view.set(parent_path, Some(parent));
        view.set(&path, None);
    }
    Prepared { body: TxnBody::CloseSession, changes: view.changes }
}

/// Whether every op of a body failed (a failed single op, or a failed multi).
fn body_failed(body: &TxnBody) -> bool {
    match body {
        TxnBody::Single(op) => matches!(op, TxnOp::Error { .. }),
        TxnBody::Multi(ops) => !ops.is_empty() && ops.iter().all(|op| matches!(op, TxnOp::Error { .. })),
        TxnBody::CreateSession { .. } | TxnBody::CloseSession => false,
    }
}

fn prep_single(view: &mut View<'_>, op: OpCode, req: &Request, ctx: &PrepContext<'_>) -> Result<TxnOp, ErrorCode> {
    match req {
        Request::Create(create) => prep_create(view, op, create, ctx),
        Request::Delete { path, version } => prep_delete(view, path, *version, ctx),
        Request::DeleteContainer { path } => prep_delete_container(view, path),
        Request::SetData { path, data, version } => {
            validate(path)?;
            let mut record = view.get(path)?;
            acl::check(&record.acl, perms::WRITE, ctx.ids)?;
            // ZooKeeper checks the quota before the version.
            let new_len = data.as_ref().map_or(0, |d| d.len());
            check_quota(view, path, new_len as i64 - record.data_len as i64, 0, ctx)?;
            let version = check_and_inc_version(record.version, *version)?;
            record.version = version;
            record.data_len = new_len;
            view.set(path, Some(record));
            Ok(TxnOp::SetData { path: path.clone(), data: owned(data), version })
        }
        Request::SetAcl { path, acl: requested, version } => {
            validate(path)?;
            let fixed = acl::fixup(requested, ctx.ids, ctx.schemes)?;
            let mut record = view.get(path)?;
            acl::check(&record.acl, perms::ADMIN, ctx.ids)?;
            let version = check_and_inc_version(record.aversion, *version)?;
            record.aversion = version;
            record.acl = Arc::new(fixed.clone());
            view.set(path, Some(record));
            Ok(TxnOp::SetAcl { path: path.clone(), acl: fixed, version })
        }
        Request::Check { path, version } => {
            validate(path)?;
            let record = view.get(path)?;
            acl::check(&record.acl, perms::READ, ctx.ids)?;
            check_and_inc_version(record.version, *version)?;
            Ok(TxnOp::Check { path: path.clone() })
        }
        Request::Reconfig => Err(ErrorCode::ReconfigDisabled),
        Request::Malformed => Err(ErrorCode::MarshallingError),
        other => unreachable!("prep called with a read request: {other:?}"),
    }
}

fn prep_multi(view: &mut View<'_>, ops: &[MultiOp], ctx: &PrepContext<'_>) -> Vec<TxnOp> {
    let mut out = Vec::with_capacity(ops.len());
    for (i, op) in ops.iter().enumerate() {
        let (code, req) = match op {
            MultiOp::Create { op, req } => (*op, Request::Create(req.clone())),
            MultiOp::Delete { path, version } => (OpCode::Delete, Request::Delete { path: path.clone(), version: *version }),
            MultiOp::SetData { path, data, version } => (OpCode::SetData, Request::SetData { path: path.clone(), data: data.clone(), version: *version }),
            MultiOp::Check { path, version } => (OpCode::Check, Request::Check { path: path.clone(), version: *version }),
        };
        match prep_single(view, code, &req, ctx) {
            Ok(txn_op) => out.push(txn_op),
            Err(failed) => {
                // The whole multi fails: what its earlier ops changed is undone.
                view.changes.clear();
                // Ops before the failure report Ok, the failure its code, ops after it
                // RuntimeInconsistency (DataTree.processTxn for a failed MultiTxn).
                let mut codes = vec![ErrorCode::Ok; i];
                codes.push(failed);
                codes.resize(ops.len(), ErrorCode::RuntimeInconsistency);
                return codes.into_iter().map(|c| TxnOp::Error { code: c.code() }).collect();
            }
        }
    }
    out
}

/// Node data in an allocation of its own. Request data is a slice of the
/// connection's read buffer; stored as is, a long-lived node would keep that
/// whole buffer alive.
fn owned(data: &Option<bytes::Bytes>) -> Option<bytes::Bytes> {
    data.as_ref().map(|d| bytes::Bytes::copy_from_slice(d))
}

fn validate(path: &str) -> Result<(), ErrorCode> {
    path::validate(path).map_err(|_| ErrorCode::BadArguments)
}

/// `checkQuota`: under `enforceQuota`, the committed quota stats of `path`
/// plus this change must stay within their hard limits.
fn check_quota(view: &View<'_>, path: &str, bytes_diff: i64, count_diff: i64, ctx: &PrepContext<'_>) -> Result<(), ErrorCode> {
    if !ctx.enforce_quota {
        return Ok(());
    }
    view.tree.check_quota(path, bytes_diff, count_diff)
}

/// `checkAndIncVersion`: -1 matches any version; the result is the new version.
fn check_and_inc_version(current: i32, expected: i32) -> Result<i32, ErrorCode> {
    if expected != -1 && expected != current {
        return Err(ErrorCode::BadVersion);
    }
    Ok(current.wrapping_add(1))
}

/// `getParentPathAndValidate`: the parent, refusing ZooKeeper's own nodes.
fn parent_for_delete(path: &str) -> Result<&str, ErrorCode> {
    let special = [path::ROOT, tree::ZOOKEEPER_NODE, tree::QUOTA_NODE, tree::CONFIG_NODE].contains(&path);
    if special || path.contains('\0') {
        return Err(ErrorCode::BadArguments);
    }
    let slash = path.rfind('/').ok_or(ErrorCode::BadArguments)?;
    Ok(if slash == 0 { path::ROOT } else { &path[..slash] })
}

fn prep_create(view: &mut View<'_>, op: OpCode, req: &CreateRequest, ctx: &PrepContext<'_>) -> Result<TxnOp, ErrorCode> {
    let mode = CreateMode::from_flags(req.flags).ok_or(ErrorCode::BadArguments)?;
    let ttl = if op == OpCode::CreateTtl { req.ttl } else { -1 };
    if mode.is_ttl() && !ctx.extended_types {
        return Err(ErrorCode::Unimplemented);
    }
    let ttl_ok = if mode.is_ttl() { (1..=TTL_MAX_MS).contains(&ttl) } else { ttl < 0 };
    if !ttl_ok {
        return Err(ErrorCode::BadArguments);
    }
    // validatePathForCreate: only the slash and NUL are checked before the parent lookup.
    let slash = req.path.rfind('/').ok_or(ErrorCode::BadArguments)?;
    if req.path.contains('\0') {
        return Err(ErrorCode::BadArguments);
    }
    let parent_path = if slash == 0 { path::ROOT } else { &req.path[..slash] };
    let acl = acl::fixup(&req.acl, ctx.ids, ctx.schemes)?;
    let mut parent = view.get(parent_path)?;
    acl::check(&parent.acl, perms::CREATE, ctx.ids)?;
    let path = if mode.is_sequential() { format!("{}{:010}", req.path, parent.child_creates) } else { req.path.clone() };
    validate(&path)?;
    if view.exists(&path) {
        return Err(ErrorCode::NodeExists);
    }
    if matches!(parent.kind, NodeKind::Ephemeral { .. }) {
        return Err(ErrorCode::NoChildrenForEphemerals);
    }
    let data_len = req.data.as_ref().map_or(0, |d| d.len());
    check_quota(view, &path, data_len as i64, 1, ctx)?;
    // The transaction type follows the opcode, as in ZooKeeper: a plain create
    // with the container flag makes a persistent node.
    let kind = match op {
        OpCode::CreateContainer => NodeKind::Container,
        OpCode::CreateTtl => NodeKind::Ttl { ttl_ms: ttl },
        _ if mode.is_ephemeral() => NodeKind::Ephemeral { session_id: ctx.session_id },
        _ => NodeKind::Persistent,
    };
    parent.child_creates = parent.child_creates.wrapping_add(1);
    parent.num_children += 1;
    view.set(parent_path, Some(parent));
    let acl_shared = Arc::new(acl.clone());
    view.set(&path, Some(Record { acl: acl_shared, version: 0, aversion: 0, child_creates: 0, num_children: 0, kind, data_len }));
    Ok(TxnOp::Create { path, data: owned(&req.data), acl, kind })
}

fn prep_delete(view: &mut View<'_>, path: &str, version: i32, ctx: &PrepContext<'_>) -> Result<TxnOp, ErrorCode> {
    let parent_path = parent_for_delete(path)?;
    let mut parent = view.get(parent_path)?;
    acl::check(&parent.acl, perms::DELETE, ctx.ids)?;
    let record = view.get(path)?;
    check_and_inc_version(record.version, version)?;
    if record.num_children > 0 {
        return Err(ErrorCode::NotEmpty);
    }
    parent.num_children -= 1;
    view.set(parent_path, Some(parent));
    view.set(path, None);
    Ok(TxnOp::Delete { path: path.to_string() })
}

fn prep_delete_container(view: &mut View<'_>, path: &str) -> Result<TxnOp, ErrorCode> {
    let parent_path = parent_for_delete(path)?;
    let record = view.get(path)?;
    if record.num_children > 0 {
        return Err(ErrorCode::NotEmpty);
    }
    if matches!(record.kind, NodeKind::Ephemeral { .. }) {
        return Err(ErrorCode::BadVersion);
    }
    let mut parent = view.get(parent_path)?;
    parent.num_children -= 1;
    view.set(parent_path, Some(parent));
    view.set(path, None);
    Ok(TxnOp::Delete { path: path.to_string() })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::tree::open_acl;
    use crate::core::txn::Txn;
    use crate::core::zxid::Zxid;

    fn ctx() -> PrepContext<'static> {
        PrepContext { session_id: 9, ids: &[], extended_types: true, enforce_quota: false, schemes: Default::default() }
    }

    fn create(path: &str, flags: i32) -> Request {
        Request::Create(CreateRequest { path: path.into(), data: None, acl: open_acl(), flags, ttl: 0 })
    }

    fn error_code(body: &TxnBody) -> Option<i32> {
        match body {
            TxnBody::Single(TxnOp::Error { code }) => Some(*code),
            _ => None,
        }
    }

    /// Prep against the committed tree alone (nothing outstanding).
    fn prep_committed(tree: &DataTree, op: OpCode, req: &Request, ctx: &PrepContext<'_>) -> TxnBody {
        prep(tree, &Outstanding::default(), op, req, ctx).body
    }

    fn run(tree: &mut DataTree, zxid: i64, op: OpCode, req: &Request) -> TxnBody {
        let body = prep_committed(tree, op, req, &ctx());
        tree.apply(&Txn { zxid: Zxid::from_raw(zxid), time_ms: 0, session_id: 9, cxid: 0, body: body.clone() });
        body
    }

    #[test]
    fn create_path_rules_match_zookeeper() {
        let mut tree = DataTree::new();
        run(&mut tree, 1, OpCode::Create, &create("/existing", 0));
        let code = |p: &str| error_code(&prep_committed(&tree, OpCode::Create, &create(p, 0), &ctx()));
        assert_eq!(code("/a//b"), Some(ErrorCode::NoNode.code()));
        assert_eq!(code("/missing/"), Some(ErrorCode::NoNode.code()));
        assert_eq!(code("/existing/"), Some(ErrorCode::BadArguments.code()));
        assert_eq!(code("/"), Some(ErrorCode::NodeExists.code()));
        assert_eq!(code("/existing"), Some(ErrorCode::NodeExists.code()));
        assert_eq!(code("noslash"), Some(ErrorCode::BadArguments.code()));
        assert_eq!(error_code(&prep_committed(&tree, OpCode::Create, &create("/x", 9), &ctx())), Some(ErrorCode::BadArguments.code()));
    }

    #[test]
    fn sequential_suffix_counts_creates_only() {
        let mut tree = DataTree::new();
        run(&mut tree, 1, OpCode::Create, &create("/p", 0));
        run(&mut tree, 2, OpCode::Create, &create("/p/a", 0));
        run(&mut tree, 3, OpCode::Create, &create("/p/b", 0));
        run(&mut tree, 4, OpCode::Delete, &Request::Delete { path: "/p/a".into(), version: -1 });
        let body = run(&mut tree, 5, OpCode::Create, &create("/p/", 2));
        assert!(matches!(body, TxnBody::Single(TxnOp::Create { ref path, .. }) if path == "/p/0000000002"), "{body:?}");
    }

    #[test]
    fn failed_multi_reports_ok_failure_then_runtime_inconsistency() {
        let tree = DataTree::new();
        let ops = vec![
            MultiOp::Create { op: OpCode::Create, req: CreateRequest { path: "/m".into(), data: None, acl: open_acl(), flags: 0, ttl: 0 } },
            MultiOp::Check { path: "/m".into(), version: 3 },
            MultiOp::Delete { path: "/m".into(), version: -1 },
        ];
        let body = prep_committed(&tree, OpCode::Multi, &Request::Multi(ops), &ctx());
        let codes: Vec<i32> = match body {
            TxnBody::Multi(ops) => ops.iter().map(|op| if let TxnOp::Error { code } = op { *code } else { 99 }).collect(),
            _ => panic!(),
        };
        assert_eq!(codes, vec![0, ErrorCode::BadVersion.code(), ErrorCode::RuntimeInconsistency.code()]);
    }

    #[test]
    fn multi_ops_see_earlier_ops() {
        let tree = DataTree::new();
        let ops = vec![
            MultiOp::Create { op: OpCode::Create, req: CreateRequest { path: "/m".into(), data: None, acl: open_acl(), flags: 0, ttl: 0 } },
            MultiOp::SetData { path: "/m".into(), data: None, version: 0 },
            MultiOp::Check { path: "/m".into(), version: 1 },
            MultiOp::Delete { path: "/m".into(), version: 1 },
        ];
        let body = prep_committed(&tree, OpCode::Multi, &Request::Multi(ops), &ctx());
        assert!(matches!(&body, TxnBody::Multi(ops) if ops.iter().all(|op| !matches!(op, TxnOp::Error { .. }))), "{body:?}");
    }

    #[test]
    fn ttl_and_ephemeral_rules() {
        let mut tree = DataTree::new();
        let ttl = |flags, ttl| Request::Create(CreateRequest { path: "/t".into(), data: None, acl: open_acl(), flags, ttl });
        assert_eq!(error_code(&prep_committed(&tree, OpCode::CreateTtl, &ttl(5, 0), &ctx())), Some(ErrorCode::BadArguments.code()));
        assert_eq!(error_code(&prep_committed(&tree, OpCode::CreateTtl, &ttl(0, 100), &ctx())), Some(ErrorCode::BadArguments.code()));
        assert_eq!(error_code(&prep_committed(&tree, OpCode::CreateTtl, &ttl(5, 100), &ctx())), None);
        let off = PrepContext { extended_types: false, ..ctx() };
        assert_eq!(error_code(&prep_committed(&tree, OpCode::CreateTtl, &ttl(5, 100), &off)), Some(ErrorCode::Unimplemented.code()));
        run(&mut tree, 1, OpCode::Create, &create("/e", 1));
        assert_eq!(error_code(&prep_committed(&tree, OpCode::Create, &create("/e/c", 0), &ctx())), Some(ErrorCode::NoChildrenForEphemerals.code()));
        assert_eq!(
            error_code(&prep_committed(&tree, OpCode::Delete, &Request::Delete { path: "/zookeeper".into(), version: -1 }, &ctx())),
            Some(ErrorCode::BadArguments.code())
        );
    }

    #[test]
    fn prep_sees_outstanding_changes_and_a_failed_multi_leaves_none() {
        let tree = DataTree::new();
        let mut outstanding = Outstanding::default();
        let first = prep(&tree, &outstanding, OpCode::Create, &create("/o", 0), &ctx());
        assert!(matches!(first.body, TxnBody::Single(TxnOp::Create { .. })));
        outstanding.push(Zxid::from_raw(1), first.changes);
        // Not committed, yet the next prep sees /o: a child works, a second /o does not.
        let child = prep(&tree, &outstanding, OpCode::Create, &create("/o/", 2), &ctx());
        assert!(matches!(&child.body, TxnBody::Single(TxnOp::Create { path, .. }) if path == "/o/0000000000"), "{child:?}");
        outstanding.push(Zxid::from_raw(2), child.changes);
        assert_eq!(error_code(&prep_committed(&tree, OpCode::Create, &create("/o", 0), &ctx())), None, "the committed tree alone has no /o");
        let again = prep(&tree, &outstanding, OpCode::Create, &create("/o", 0), &ctx());
        assert_eq!(error_code(&again.body), Some(ErrorCode::NodeExists.code()));
        assert!(again.changes.is_empty(), "a failed request changes nothing");
        let failing = vec![
            MultiOp::Create { op: OpCode::Create, req: CreateRequest { path: "/m".into(), data: None, acl: open_acl(), flags: 0, ttl: 0 } },
            MultiOp::Delete { path: "/o".into(), version: -1 },
        ];
        let multi = prep(&tree, &outstanding, OpCode::Multi, &Request::Multi(failing), &ctx());
        assert!(multi.changes.is_empty(), "the failed multi's create of /m is undone: {multi:?}");
        // The sequential suffix counts the outstanding create.
        let next = prep(&tree, &outstanding, OpCode::Create, &create("/o/", 2), &ctx());
        assert!(matches!(&next.body, TxnBody::Single(TxnOp::Create { path, .. }) if path == "/o/0000000001"), "{next:?}");
    }

    #[test]
    fn close_session_deletes_committed_and_outstanding_ephemerals_in_the_view() {
        let mut tree = DataTree::new();
        let eph = |path: &str| create(path, 1);
        run(&mut tree, 1, OpCode::Create, &eph("/e1"));
        let mut outstanding = Outstanding::default();
        let pending = prep(&tree, &outstanding, OpCode::Create, &eph("/e2"), &ctx());
        outstanding.push(Zxid::from_raw(2), pending.changes);
        let closed = prep_close_session(&tree, &outstanding, 9);
        assert_eq!(closed.body, TxnBody::CloseSession);
        assert_eq!(closed.changes.get("/e1"), Some(&None));
        assert_eq!(closed.changes.get("/e2"), Some(&None));
        assert_eq!(closed.changes.get("/").and_then(|r| r.as_ref()).map(|r| r.num_children), Some(1), "only /zookeeper is left under /");
        outstanding.push(Zxid::from_raw(3), closed.changes);
        assert_eq!(error_code(&prep(&tree, &outstanding, OpCode::Create, &eph("/e1"), &ctx()).body), None, "/e1 is gone once the close is outstanding");
    }
}
