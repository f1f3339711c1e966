//! raft-rs's messages in keeper's own rkyv form, for peer frames.
//!
//! raft-rs's protobuf decoder (protobuf 2.28) overflows its stack on crafted
//! input (RUSTSEC-2024-0437), so no network byte ever reaches it: peers
//! exchange [`WireMessage`]s, checked by rkyv on the way in, and converted
//! to and from raft's types field by field here. An unknown message or
//! entry type is refused, not guessed.

use raft::prelude::{ConfState, Entry, EntryType, Message, MessageType, Snapshot, SnapshotMetadata};
use rkyv::{Archive, Deserialize, Serialize};

/// A raft log entry.
#[derive(Debug, Clone, PartialEq, Eq, Archive, Serialize, Deserialize)]
pub struct WireEntry {
    pub entry_type: u8,
    pub term: u64,
    pub index: u64,
    pub data: Vec<u8>,
    pub context: Vec<u8>,
}

/// A snapshot's metadata (and data, which keeper streams apart, so empty).
#[derive(Debug, Clone, PartialEq, Eq, Archive, Serialize, Deserialize)]
pub struct WireSnapshot {
    pub index: u64,
    pub term: u64,
    pub voters: Vec<u64>,
    pub learners: Vec<u64>,
    pub voters_outgoing: Vec<u64>,
    pub learners_next: Vec<u64>,
    pub auto_leave: bool,
    pub data: Vec<u8>,
}

/// A raft message.
#[derive(Debug, Clone, PartialEq, Eq, Archive, Serialize, Deserialize)]
pub struct WireMessage {
    pub msg_type: u8,
    pub to: u64,
    pub from: u64,
    pub term: u64,
    pub log_term: u64,
    pub index: u64,
    pub entries: Vec<WireEntry>,
    pub commit: u64,
    pub commit_term: u64,
    pub snapshot: Option<WireSnapshot>,
    pub request_snapshot: u64,
    pub reject: bool,
    pub reject_hint: u64,
    pub context: Vec<u8>,
    pub priority: i64,
}

/// raft's message types, by the number keeper's frames give them.
const MESSAGE_TYPES: [MessageType; 19] = [
    MessageType::MsgHup,
    MessageType::MsgBeat,
    MessageType::MsgPropose,
    MessageType::MsgAppend,
    MessageType::MsgAppendResponse,
    MessageType::MsgRequestVote,
    MessageType::MsgRequestVoteResponse,
    MessageType::MsgSnapshot,
    MessageType::MsgHeartbeat,
    MessageType::MsgHeartbeatResponse,
    MessageType::MsgUnreachable,
    MessageType::MsgSnapStatus,
    MessageType::MsgCheckQuorum,
    MessageType::MsgTransferLeader,
    MessageType::MsgTimeoutNow,
    MessageType::MsgReadIndex,
    MessageType::MsgReadIndexResp,
    MessageType::MsgRequestPreVote,
    MessageType::MsgRequestPreVoteResponse,
];

const ENTRY_TYPES: [EntryType; 3] = [EntryType::EntryNormal, EntryType::EntryConfChange, EntryType::EntryConfChangeV2];

/// Why a wire message was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadWireMessage(pub String);

fn type_number<T: PartialEq + Copy + std::fmt::Debug>(table: &[T], value: T) -> u8 {
    table.iter().position(|t| *t == value).unwrap_or_else(|| panic!("{value:?} has a wire number")) as u8
}

impl From<&Entry> for WireEntry {
    fn from(e: &Entry) -> WireEntry {
        WireEntry { entry_type: type_number(&ENTRY_TYPES, e.entry_type), term: e.term, index: e.index, data: e.data.to_vec(), context: e.context.to_vec() }
    }
}

impl WireEntry {
    /// The raft entry, unless its type is unknown.
    pub fn to_raft(&self) -> Result<Entry, BadWireMessage> {
        let entry_type = *ENTRY_TYPES.get(self.entry_type as usize).ok_or_else(|| BadWireMessage(format!("unknown entry type {}", self.entry_type)))?;
        Ok(Entry { entry_type, term: self.term, index: self.index, data: self.data.clone().into(), context: self.context.clone().into(), ..Default::default() })
    }
}

impl From<&Message> for WireMessage {
    fn from(m: &Message) -> WireMessage {
        let snapshot = m.snapshot.as_ref().filter(|s| !s.is_empty()).map(|s| {
            let meta = s.get_metadata();
            let conf = meta.get_conf_state();
            WireSnapshot {
                index: meta.index,
                term: meta.term,
                voters: conf.voters.clone(),
                learners: conf.learners.clone(),
                voters_outgoing: conf.voters_outgoing.clone(),
                learners_next: conf.learners_next.clone(),
                auto_leave: conf.auto_leave,
                data: s.data.to_vec(),
            }
        });
        WireMessage {
            msg_type: type_number(&MESSAGE_TYPES, m.msg_type),
            to: m.to,
            from: m.from,
            term: m.term,
            log_term: m.log_term,
            index: m.index,
            entries: m.entries.iter().map(WireEntry::from).collect(),
            commit: m.commit,
            commit_term: m.commit_term,
            snapshot,
            request_snapshot: m.request_snapshot,
            reject: m.reject,
            reject_hint: m.reject_hint,
            context: m.context.to_vec(),
            priority: m.priority,
        }
    }
}

impl WireMessage {
    /// The raft message, unless a type in it is unknown.
    pub fn to_raft(&self) -> Result<Message, BadWireMessage> {
        let msg_type = *MESSAGE_TYPES.get(self.msg_type as usize).ok_or_else(|| BadWireMessage(format!("unknown message type {}", self.msg_type)))?;
        let mut m = Message {
            msg_type,
            to: self.to,
            from: self.from,
            term: self.term,
            log_term: self.log_term,
            index: self.index,
            commit: self.commit,
            commit_term: self.commit_term,
            request_snapshot: self.request_snapshot,
            reject: self.reject,
            reject_hint: self.reject_hint,
            context: self.context.clone().into(),
            priority: self.priority,
            ..Default::default()
        };
        m.set_entries(self.entries.iter().map(WireEntry::to_raft).collect::<Result<Vec<_>, _>>()?.into());
        if let Some(s) = &self.snapshot {
            let conf = ConfState {
                voters: s.voters.clone(),
                learners: s.learners.clone(),
                voters_outgoing: s.voters_outgoing.clone(),
                learners_next: s.learners_next.clone(),
                auto_leave: s.auto_leave,
                ..Default::default()
            };
            let mut meta = SnapshotMetadata { index: s.index, term: s.term, ..Default::default() };
            meta.set_conf_state(conf);
            let mut snap = Snapshot { data: s.data.clone().into(), ..Default::default() };
            snap.set_metadata(meta);
            m.set_snapshot(snap);
        }
        Ok(m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_message_and_entry_type_round_trips() {
        for (i, t) in MESSAGE_TYPES.iter().enumerate() {
            let mut m = Message { msg_type: *t, to: 2, from: 1, term: 7, index: i as u64, commit: 3, reject: i % 2 == 0, priority: -1, ..Default::default() };
            let entries: Vec<Entry> =
                ENTRY_TYPES.iter().map(|et| Entry { entry_type: *et, term: 7, index: 9, data: vec![1, 2, 3].into(), ..Default::default() }).collect();
            m.set_entries(entries.into());
            let wire = WireMessage::from(&m);
            let bytes = rkyv::to_bytes::<rkyv::rancor::Error>(&wire).unwrap();
            let back = rkyv::from_bytes::<WireMessage, rkyv::rancor::Error>(&bytes).unwrap();
            assert_eq!(back.to_raft().unwrap(), m, "{t:?}");
        }
        let mut snap_msg = Message { msg_type: MessageType::MsgSnapshot, ..Default::default() };
        let mut meta = SnapshotMetadata { index: 40, term: 3, ..Default::default() };
        meta.set_conf_state(ConfState::from((vec![1, 2, 3], vec![4])));
        let mut snap = Snapshot::default();
        snap.set_metadata(meta);
        snap_msg.set_snapshot(snap);
        assert_eq!(WireMessage::from(&snap_msg).to_raft().unwrap(), snap_msg);
    }

    #[test]
    fn unknown_types_are_refused() {
        let mut wire = WireMessage::from(&Message::default());
        wire.msg_type = 19;
        assert!(wire.to_raft().is_err());
        wire.msg_type = 3;
        wire.entries.push(WireEntry { entry_type: 3, term: 1, index: 1, data: vec![], context: vec![] });
        assert!(wire.to_raft().unwrap_err().0.contains("entry type 3"));
    }
}
