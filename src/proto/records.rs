//! Jute records shared by requests, replies and our own storage: `Stat`, `Id`,
//! `ACL`, and the headers that start every frame.

use super::jute::{DecodeError, DecodeResult, JuteReader, JuteWriter};
use rkyv::{Archive, Deserialize, Serialize};

/// A node's metadata as the client sees it (`org.apache.zookeeper.data.Stat`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stat {
    pub czxid: i64,
    pub mzxid: i64,
    pub ctime: i64,
    pub mtime: i64,
    pub version: i32,
    pub cversion: i32,
    pub aversion: i32,
    pub ephemeral_owner: i64,
    pub data_length: i32,
    pub num_children: i32,
    pub pzxid: i64,
}

impl Stat {
    /// Encoded size in bytes.
    pub const WIRE_LEN: usize = 68;

    /// Writes the record.
    pub fn write(&self, w: &mut JuteWriter<'_>) {
        w.long(self.czxid)
            .long(self.mzxid)
            .long(self.ctime)
            .long(self.mtime)
            .int(self.version)
            .int(self.cversion)
            .int(self.aversion)
            .long(self.ephemeral_owner)
            .int(self.data_length)
            .int(self.num_children)
            .long(self.pzxid);
    }

    /// Reads the record.
    pub fn read(r: &mut JuteReader) -> DecodeResult<Stat> {
        Ok(Stat {
            czxid: r.long()?,
            mzxid: r.long()?,
            ctime: r.long()?,
            mtime: r.long()?,
            version: r.int()?,
            cversion: r.int()?,
            aversion: r.int()?,
            ephemeral_owner: r.long()?,
            data_length: r.int()?,
            num_children: r.int()?,
            pzxid: r.long()?,
        })
    }
}

/// An identity: an auth scheme and the id within it (`org.apache.zookeeper.data.Id`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Archive, Serialize, Deserialize)]
pub struct Id {
    pub scheme: String,
    pub id: String,
}

impl Id {
    /// Builds an id from its two parts.
    pub fn new(scheme: &str, id: &str) -> Id {
        Id { scheme: scheme.to_string(), id: id.to_string() }
    }
}

/// One ACL entry: permission bits granted to an id (`org.apache.zookeeper.data.ACL`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Archive, Serialize, Deserialize)]
pub struct Acl {
    pub perms: i32,
    pub id: Id,
}

impl Acl {
    /// Writes the record.
    pub fn write(&self, w: &mut JuteWriter<'_>) {
        w.int(self.perms).ustring(&self.id.scheme).ustring(&self.id.id);
    }

    /// Reads the record.
    /// Null fields follow what ZooKeeper's `fixupACL` does with them: a null
    /// scheme names no provider (InvalidACL, so it reads as ""); a null id is
    /// ignored by the `auth` scheme and dereferenced by every other scheme
    /// (a NullPointerException: MarshallingError).
    pub fn read(r: &mut JuteReader) -> DecodeResult<Acl> {
        let perms = r.int()?;
        let scheme = r.ustring_opt()?.unwrap_or_default();
        let id = match r.ustring_opt()? {
            Some(id) => id,
            None if scheme == "auth" || scheme.is_empty() => String::new(),
            None => return Err(DecodeError::Null),
        };
        Ok(Acl { perms, id: Id { scheme, id } })
    }

    /// Reads a `vector<ACL>`; null reads as empty (the server then rejects it as InvalidACL).
    pub fn read_list(r: &mut JuteReader) -> DecodeResult<Vec<Acl>> {
        let n = r.count()?.unwrap_or(0);
        let mut out = Vec::with_capacity(n.min(64));
        for _ in 0..n {
            out.push(Acl::read(r)?);
        }
        Ok(out)
    }

    /// Writes a `vector<ACL>`.
    pub fn write_list(acl: &[Acl], w: &mut JuteWriter<'_>) {
        w.count(acl.len());
        for a in acl {
            a.write(w);
        }
    }
}

/// `RequestHeader`: the start of every request after the handshake.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestHeader {
    pub xid: i32,
    pub op: i32,
}

impl RequestHeader {
    /// Reads the record.
    pub fn read(r: &mut JuteReader) -> DecodeResult<RequestHeader> {
        Ok(RequestHeader { xid: r.int()?, op: r.int()? })
    }
}

/// `ReplyHeader`: the start of every reply and notification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplyHeader {
    pub xid: i32,
    pub zxid: i64,
    pub err: i32,
}

impl ReplyHeader {
    /// Writes the record.
    pub fn write(&self, w: &mut JuteWriter<'_>) {
        w.int(self.xid).long(self.zxid).int(self.err);
    }

    /// Reads the record.
    pub fn read(r: &mut JuteReader) -> DecodeResult<ReplyHeader> {
        Ok(ReplyHeader { xid: r.int()?, zxid: r.long()?, err: r.int()? })
    }
}

/// `MultiHeader`: precedes each op of a multi request or response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MultiHeader {
    pub op: i32,
    pub done: bool,
    pub err: i32,
}

impl MultiHeader {
    /// The header that ends a multi list.
    pub const END: MultiHeader = MultiHeader { op: -1, done: true, err: -1 };

    /// Writes the record.
    pub fn write(&self, w: &mut JuteWriter<'_>) {
        w.int(self.op).boolean(self.done).int(self.err);
    }

    /// Reads the record.
    pub fn read(r: &mut JuteReader) -> DecodeResult<MultiHeader> {
        Ok(MultiHeader { op: r.int()?, done: r.boolean()?, err: r.int()? })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::BytesMut;

    #[test]
    fn stat_is_68_bytes_and_round_trips() {
        let stat = Stat {
            czxid: 1,
            mzxid: 2,
            ctime: 3,
            mtime: 4,
            version: 5,
            cversion: 6,
            aversion: 7,
            ephemeral_owner: 8,
            data_length: 9,
            num_children: 10,
            pzxid: 11,
        };
        let mut buf = BytesMut::new();
        stat.write(&mut JuteWriter::new(&mut buf));
        assert_eq!(buf.len(), Stat::WIRE_LEN);
        assert_eq!(Stat::read(&mut JuteReader::new(buf.freeze())).unwrap(), stat);
    }
}
