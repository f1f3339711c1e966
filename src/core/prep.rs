//! Preparing writes: request + tree + who is asking → transaction body.
//! ZooKeeper's `PrepRequestProcessor`, check for check and in the same order,
//! so the same request fails with the same error code.
//!
//! The tree given to `prep` already holds every earlier proposed transaction
//! (the broadcast core applies each transaction to its own tree as soon as it
//! is prepared), so ZooKeeper's "outstanding changes" are simply the tree.
//! Inside a multi, later ops must see earlier ops' effects without touching
//! the tree until the whole multi is known to succeed: [`View`] overlays
//! those pending changes, as ZooKeeper's `ChangeRecord`s do.

use crate::core::acl;
use crate::core::path;
use crate::core::tree::{self, DataTree};
use crate::core::txn::{NodeKind, TxnBody, TxnOp};
use crate::proto::codes::{ErrorCode, OpCode, perms};
use crate::proto::records::{Acl, Id};
use crate::proto::request::{CreateMode, CreateRequest, MultiOp, Request};
use std::collections::HashMap;
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
}

/// What prep needs to know of a node (ZooKeeper's `ChangeRecord`).
#[derive(Debug, Clone)]
struct Record {
    acl: Arc<Vec<Acl>>,
    version: i32,
    aversion: i32,
    child_creates: i32,
    num_children: usize,
    kind: NodeKind,
}

impl Record {
    fn of(node: &tree::Node) -> Record {
        Record {
            acl: node.acl.clone(),
            version: node.persisted.version,
            aversion: node.persisted.aversion,
            child_creates: node.persisted.child_creates,
            num_children: node.children.len(),
            kind: node.kind(),
        }
    }
}

/// The tree plus the changes of the multi being prepared.
struct View<'a> {
    tree: &'a DataTree,
    /// `None` marks a node deleted earlier in the multi.
    changes: HashMap<String, Option<Record>>,
}

impl View<'_> {
    fn get(&self, path: &str) -> Result<Record, ErrorCode> {
        let found = match self.changes.get(path) {
            Some(change) => change.clone(),
            None => self.tree.get(path).map(Record::of),
        };
        found.ok_or(ErrorCode::NoNode)
    }

    fn exists(&self, path: &str) -> bool {
        self.get(path).is_ok()
    }

    fn set(&mut self, path: &str, record: Option<Record>) {
        self.changes.insert(path.to_string(), record);
    }
}

/// Prepares a write request into a transaction body. Failures become
/// `Error` ops: they still take a zxid, as in ZooKeeper.
pub fn prep(tree: &DataTree, op: OpCode, req: &Request, ctx: &PrepContext<'_>) -> TxnBody {
    let mut view = View { tree, changes: HashMap::new() };
    match req {
        Request::Multi(ops) => TxnBody::Multi(prep_multi(&mut view, ops, ctx)),
        _ => TxnBody::Single(prep_single(&mut view, op, req, ctx).unwrap_or_else(|code| TxnOp::Error { code: code.code() })),
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
            let version = check_and_inc_version(record.version, *version)?;
            record.version = version;
            view.set(path, Some(record));
            Ok(TxnOp::SetData { path: path.clone(), data: owned(data), version })
        }
        Request::SetAcl { path, acl: requested, version } => {
            validate(path)?;
            let fixed = acl::fixup(requested, ctx.ids)?;
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
    let acl = acl::fixup(&req.acl, ctx.ids)?;
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
    view.set(&path, Some(Record { acl: acl_shared, version: 0, aversion: 0, child_creates: 0, num_children: 0, kind }));
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

    fn ctx() -> PrepContext<'static> {
        PrepContext { session_id: 9, ids: &[], extended_types: true }
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

    fn run(tree: &mut DataTree, zxid: i64, op: OpCode, req: &Request) -> TxnBody {
        let body = prep(tree, op, req, &ctx());
        tree.apply(&Txn { zxid, time_ms: 0, session_id: 9, cxid: 0, body: body.clone() });
        body
    }

    #[test]
    fn create_path_rules_match_zookeeper() {
        let mut tree = DataTree::new();
        run(&mut tree, 1, OpCode::Create, &create("/existing", 0));
        let code = |p: &str| error_code(&prep(&tree, OpCode::Create, &create(p, 0), &ctx()));
        assert_eq!(code("/a//b"), Some(ErrorCode::NoNode.code()));
        assert_eq!(code("/missing/"), Some(ErrorCode::NoNode.code()));
        assert_eq!(code("/existing/"), Some(ErrorCode::BadArguments.code()));
        assert_eq!(code("/"), Some(ErrorCode::NodeExists.code()));
        assert_eq!(code("/existing"), Some(ErrorCode::NodeExists.code()));
        assert_eq!(code("noslash"), Some(ErrorCode::BadArguments.code()));
        assert_eq!(error_code(&prep(&tree, OpCode::Create, &create("/x", 9), &ctx())), Some(ErrorCode::BadArguments.code()));
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
        let body = prep(&tree, OpCode::Multi, &Request::Multi(ops), &ctx());
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
        let body = prep(&tree, OpCode::Multi, &Request::Multi(ops), &ctx());
        assert!(matches!(&body, TxnBody::Multi(ops) if ops.iter().all(|op| !matches!(op, TxnOp::Error { .. }))), "{body:?}");
    }

    #[test]
    fn ttl_and_ephemeral_rules() {
        let mut tree = DataTree::new();
        let ttl = |flags, ttl| Request::Create(CreateRequest { path: "/t".into(), data: None, acl: open_acl(), flags, ttl });
        assert_eq!(error_code(&prep(&tree, OpCode::CreateTtl, &ttl(5, 0), &ctx())), Some(ErrorCode::BadArguments.code()));
        assert_eq!(error_code(&prep(&tree, OpCode::CreateTtl, &ttl(0, 100), &ctx())), Some(ErrorCode::BadArguments.code()));
        assert_eq!(error_code(&prep(&tree, OpCode::CreateTtl, &ttl(5, 100), &ctx())), None);
        let off = PrepContext { extended_types: false, ..ctx() };
        assert_eq!(error_code(&prep(&tree, OpCode::CreateTtl, &ttl(5, 100), &off)), Some(ErrorCode::Unimplemented.code()));
        run(&mut tree, 1, OpCode::Create, &create("/e", 1));
        assert_eq!(error_code(&prep(&tree, OpCode::Create, &create("/e/c", 0), &ctx())), Some(ErrorCode::NoChildrenForEphemerals.code()));
        assert_eq!(
            error_code(&prep(&tree, OpCode::Delete, &Request::Delete { path: "/zookeeper".into(), version: -1 }, &ctx())),
            Some(ErrorCode::BadArguments.code())
        );
    }
}
