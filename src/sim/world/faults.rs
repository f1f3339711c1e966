//! The faults the simulated world injects into its servers: crashes and
//! power cuts (with what the disk keeps, tears or flips), pauses,
//! partitions, wall-clock jumps and drift.

use super::*;

impl World {
    /// Now and then: a crash (of one server, or a power cut of all), a
    /// pause, a partition, a wall-clock jump, or a change of clock drift.
    pub(super) fn inject_faults(&mut self) {
        if !self.rng.chance(4_000) {
            return;
        }
        let ids: Vec<u64> = self.servers.keys().copied().collect();
        let id = self.rng.pick(&ids);
        let now = self.now;
        let kind = self.rng.range(0, 6);
        self.faults += 1;
        match kind {
            0 if self.servers[&id].seq.is_some() => {
                let back = now + self.rng.range(50, 3000) as i64;
                self.crash(id, back);
            }
            4 => {
                // A power cut: every server at once.
                let back = now + self.rng.range(50, 1000) as i64;
                let running: Vec<u64> = ids.iter().copied().filter(|id| self.servers[id].seq.is_some()).collect();
                for id in running {
                    self.crash(id, back);
                }
            }
            1 if self.up(id) => {
                let until = now + self.rng.range(100, 3000) as i64;
                self.servers.get_mut(&id).unwrap().paused_until = Some(until);
                self.note(&format!("{now} pause {id}"));
            }
            2 => {
                let until = now + self.rng.range(100, 4000) as i64;
                let both_ways = self.rng.chance(700_000);
                for other in ids.iter().copied().filter(|&o| o != id) {
                    self.cut.insert((id, other), until);
                    if both_ways {
                        self.cut.insert((other, id), until);
                    }
                }
                self.note(&format!("{now} partition {id}"));
            }
            3 => {
                let jump = self.rng.range(0, 7_200_000) as i64 - 3_600_000;
                self.servers.get_mut(&id).unwrap().clock.wall_offset += jump;
                self.note(&format!("{now} clock {id} {jump}"));
            }
            _ => {
                let ppm = self.rng.range(0, 2 * MAX_DRIFT_PPM as u64 + 1) as i64 - MAX_DRIFT_PPM;
                self.servers.get_mut(&id).unwrap().clock.drift(now, ppm);
                self.note(&format!("{now} drift {id} {ppm}"));
            }
        }
    }

    /// Server `id`'s process dies; it starts again at `back`. Its disk
    /// keeps what was synced, and (with faults) perhaps some writes that
    /// were not, the last one torn; now and then a bit of a synced record
    /// flips (on one server at a time: the others must hold the data while
    /// it is wiped and catches up).
    pub(super) fn crash(&mut self, id: u64, back: i64) {
        let (written, torn, flip) = if self.opts.faults {
            let s = &self.servers[&id];
            let unsynced = (s.log.last_index() - s.log.persisted_index()) as usize;
            let written = self.rng.range(0, unsynced as u64 + 1) as usize;
            let torn = (written < unsynced && self.rng.chance(500_000)).then(|| self.rng.range(1, 64) as usize);
            let damaged = self.servers.values().any(|s| s.corrupt || s.crashed_log.as_ref().is_some_and(|i| i.flipped.is_some()));
            (written, torn, !damaged && self.rng.chance(FLIP_PER_MILLION))
        } else {
            (0, None, false)
        };
        let s = self.servers.get_mut(&id).unwrap();
        let base = s.snapshot.as_ref().map_or(0, |(p, _)| p.index);
        let mut image = Image::after_crash(&s.log, base, written, torn);
        self.disk.unsynced_kept += usize::from(written > 0);
        self.disk.torn += usize::from(torn.is_some());
        if flip && image.flip_a_bit(&mut self.rng) {
            self.disk.flipped += 1;
        }
        let s = self.servers.get_mut(&id).unwrap();
        s.crashed_log = Some(image);
        s.log = MemLog::default();
        s.out_of_space = false;
        s.seq = None;
        s.shards.clear();
        s.persist = None;
        s.received.clear();
        // Its links break: what was on the way to or from it is lost.
        self.wire.retain(|m| m.to != id && m.from != id);
        s.down_until = Some(back);
        s.paused_until = None;
        self.note(&format!("{} crash {id}", self.now));
    }
}
