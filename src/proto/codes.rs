//! The numbers ZooKeeper puts on the wire: opcodes, error codes, special xids,
//! permission bits, create-mode flags, watch event types and states.
//!
//! Values follow `ZooDefs.java`, `KeeperException.java`, `Watcher.java` and
//! `ClientCnxn.java` of Apache ZooKeeper 3.9.5.

/// A request opcode (`RequestHeader.type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(i32)]
pub enum OpCode {
    Create = 1,
    Delete = 2,
    Exists = 3,
    GetData = 4,
    SetData = 5,
    GetAcl = 6,
    SetAcl = 7,
    GetChildren = 8,
    Sync = 9,
    Ping = 11,
    GetChildren2 = 12,
    Check = 13,
    Multi = 14,
    Create2 = 15,
    Reconfig = 16,
    CheckWatches = 17,
    RemoveWatches = 18,
    CreateContainer = 19,
    DeleteContainer = 20,
    CreateTtl = 21,
    MultiRead = 22,
    Auth = 100,
    SetWatches = 101,
    Sasl = 102,
    GetEphemerals = 103,
    GetAllChildrenNumber = 104,
    SetWatches2 = 105,
    AddWatch = 106,
    WhoAmI = 107,
    CreateSession = -10,
    CloseSession = -11,
    Error = -1,
}

impl OpCode {
    /// Maps a wire value to an opcode; `None` for values ZooKeeper does not define.
    pub fn from_i32(v: i32) -> Option<OpCode> {
        use OpCode::*;
        Some(match v {
            1 => Create,
            2 => Delete,
            3 => Exists,
            4 => GetData,
            5 => SetData,
            6 => GetAcl,
            7 => SetAcl,
            8 => GetChildren,
            9 => Sync,
            11 => Ping,
            12 => GetChildren2,
            13 => Check,
            14 => Multi,
            15 => Create2,
            16 => Reconfig,
            17 => CheckWatches,
            18 => RemoveWatches,
            19 => CreateContainer,
            20 => DeleteContainer,
            21 => CreateTtl,
            22 => MultiRead,
            100 => Auth,
            101 => SetWatches,
            102 => Sasl,
            103 => GetEphemerals,
            104 => GetAllChildrenNumber,
            105 => SetWatches2,
            106 => AddWatch,
            107 => WhoAmI,
            -10 => CreateSession,
            -11 => CloseSession,
            -1 => Error,
            _ => return None,
        })
    }

    /// Whether a request of this kind becomes a transaction (ZooKeeper
    /// counts its latency as `updatelatency`; every other request's as `readlatency`).
    pub fn is_update(self) -> bool {
        use OpCode::*;
        matches!(
            self,
            Create
                | Create2
                | CreateTtl
                | CreateContainer
                | Delete
                | DeleteContainer
                | SetData
                | SetAcl
                | Check
                | Multi
                | Reconfig
                | CreateSession
                | CloseSession
        )
    }

    /// The lower-case name ZooKeeper's `Request.op2String` prints (used by `cons`/`dump`).
    pub fn name(self) -> &'static str {
        use OpCode::*;
        match self {
            Create => "create",
            Delete => "delete",
            Exists => "exists",
            GetData => "getData",
            SetData => "setData",
            GetAcl => "getACL",
            SetAcl => "setACL",
            GetChildren => "getChildren",
            Sync => "sync",
            Ping => "ping",
            GetChildren2 => "getChildren2",
            Check => "check",
            Multi => "multi",
            Create2 => "create2",
            Reconfig => "reconfig",
            CheckWatches => "checkWatches",
            RemoveWatches => "removeWatches",
            CreateContainer => "createContainer",
            DeleteContainer => "deleteContainer",
            CreateTtl => "createTtl",
            MultiRead => "multiRead",
            Auth => "auth",
            SetWatches => "setWatches",
            Sasl => "sasl",
            GetEphemerals => "getEphemerals",
            GetAllChildrenNumber => "getAllChildrenNumber",
            SetWatches2 => "setWatches2",
            AddWatch => "addWatch",
            WhoAmI => "whoAmI",
            CreateSession => "createSession",
            CloseSession => "closeSession",
            Error => "error",
        }
    }
}

/// A ZooKeeper error code (`ReplyHeader.err`, `MultiHeader.err`, `ErrorResponse.err`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(i32)]
pub enum ErrorCode {
    Ok = 0,
    SystemError = -1,
    RuntimeInconsistency = -2,
    DataInconsistency = -3,
    ConnectionLoss = -4,
    MarshallingError = -5,
    Unimplemented = -6,
    OperationTimeout = -7,
    BadArguments = -8,
    UnknownSession = -12,
    NewConfigNoQuorum = -13,
    ReconfigInProgress = -14,
    ApiError = -100,
    NoNode = -101,
    NoAuth = -102,
    BadVersion = -103,
    NoChildrenForEphemerals = -108,
    NodeExists = -110,
    NotEmpty = -111,
    SessionExpired = -112,
    InvalidCallback = -113,
    InvalidAcl = -114,
    AuthFailed = -115,
    SessionMoved = -118,
    NotReadOnly = -119,
    EphemeralOnLocalSession = -120,
    NoWatcher = -121,
    RequestTimeout = -122,
    ReconfigDisabled = -123,
    SessionClosedRequireSaslAuth = -124,
    QuotaExceeded = -125,
    ThrottledOp = -127,
}

impl ErrorCode {
    /// The wire value.
    pub fn code(self) -> i32 {
        self as i32
    }

    /// Maps a wire value back; `None` for unknown values.
    pub fn from_i32(v: i32) -> Option<ErrorCode> {
        use ErrorCode::*;
        Some(match v {
            0 => Ok,
            -1 => SystemError,
            -2 => RuntimeInconsistency,
            -3 => DataInconsistency,
            -4 => ConnectionLoss,
            -5 => MarshallingError,
            -6 => Unimplemented,
            -7 => OperationTimeout,
            -8 => BadArguments,
            -12 => UnknownSession,
            -13 => NewConfigNoQuorum,
            -14 => ReconfigInProgress,
            -100 => ApiError,
            -101 => NoNode,
            -102 => NoAuth,
            -103 => BadVersion,
            -108 => NoChildrenForEphemerals,
            -110 => NodeExists,
            -111 => NotEmpty,
            -112 => SessionExpired,
            -113 => InvalidCallback,
            -114 => InvalidAcl,
            -115 => AuthFailed,
            -118 => SessionMoved,
            -119 => NotReadOnly,
            -120 => EphemeralOnLocalSession,
            -121 => NoWatcher,
            -122 => RequestTimeout,
            -123 => ReconfigDisabled,
            -124 => SessionClosedRequireSaslAuth,
            -125 => QuotaExceeded,
            -127 => ThrottledOp,
            _ => return None,
        })
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?} ({})", self, self.code())
    }
}

/// Special xids: a reply with one of these is not the answer to a numbered request.
pub mod xid {
    /// Watch notifications.
    pub const NOTIFICATION: i32 = -1;
    /// Ping requests and replies.
    pub const PING: i32 = -2;
    /// addAuth requests and replies.
    pub const AUTH: i32 = -4;
    /// setWatches sent by the client library after a reconnect.
    pub const SET_WATCHES: i32 = -8;
}

/// ACL permission bits (`ZooDefs.Perms`).
pub mod perms {
    pub const READ: i32 = 1;
    pub const WRITE: i32 = 1 << 1;
    pub const CREATE: i32 = 1 << 2;
    pub const DELETE: i32 = 1 << 3;
    pub const ADMIN: i32 = 1 << 4;
    pub const ALL: i32 = READ | WRITE | CREATE | DELETE | ADMIN;
}

/// Watch event types (`Watcher.Event.EventType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(i32)]
pub enum EventType {
    None = -1,
    NodeCreated = 1,
    NodeDeleted = 2,
    NodeDataChanged = 3,
    NodeChildrenChanged = 4,
    DataWatchRemoved = 5,
    ChildWatchRemoved = 6,
    PersistentWatchRemoved = 7,
}

/// Keeper states carried in watch events (`Watcher.Event.KeeperState`).
pub mod state {
    pub const SYNC_CONNECTED: i32 = 3;
    pub const EXPIRED: i32 = -112;
}

/// `AddWatchRequest.mode`.
pub mod add_watch_mode {
    pub const PERSISTENT: i32 = 0;
    pub const PERSISTENT_RECURSIVE: i32 = 1;
}

/// `RemoveWatchesRequest.type` / `CheckWatchesRequest.type` (`Watcher.WatcherType`).
pub mod watcher_type {
    pub const CHILDREN: i32 = 1;
    pub const DATA: i32 = 2;
    pub const ANY: i32 = 3;
}
