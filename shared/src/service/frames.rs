//! The frame subscribers get for a run of consecutive changes of one actor within a stream
//! batch: one `delta` from the first change's `from` to the last one's `to` (the patches the
//! writers stored, or a diff when that is smaller), a `snapshot` when the state is smaller
//! than any patch or the history broke, or `deleted` — and, for subscribers that filter, the
//! operations under their paths (or a projected snapshot, or nothing).

use std::borrow::Cow;

use json_patch::Patch;
use serde_json::Value;

use crate::actor::ActorRegistry;
use crate::changelog;
use crate::delta::{self, serialized_len, serialized_len_exceeds};
use crate::ids::{Epoch, Version};
use crate::projection::{self, Filtered};
use crate::protocol::ServerMessage;
use crate::records::{ActorChange, ActorRecord};
use crate::service::Settings;
use serde::{Deserialize, Serialize};

/// Splits one actor's changes (in stream order) into runs that one frame can carry: each
/// change continues the previous one's version in the same epoch; a deletion stands alone.
pub(super) fn runs<S>(changes: Vec<(S, ActorChange)>) -> Vec<Vec<(S, ActorChange)>> {
    let mut runs: Vec<Vec<(S, ActorChange)>> = Vec::new();
    for (sequence, change) in changes {
        let continues = runs
            .last()
            .and_then(|run| run.last())
            .is_some_and(|(_, previous)| match (previous, &change) {
                (
                    ActorChange::Created { new: prev } | ActorChange::Updated { new: prev, .. },
                    ActorChange::Updated { old, new },
                ) => old.version == prev.version && old.epoch == prev.epoch && new.epoch == prev.epoch,
                _ => false,
            });
        match runs.last_mut() {
            Some(run) if continues => run.push((sequence, change)),
            _ => runs.push(vec![(sequence, change)]),
        }
    }
    runs
}

/// The frame of one run for every subscriber: the whole one, and what each filter gets. It
/// travels in a page of a spread fan-out (see `pages`), so it serializes.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct RunFrame<'a> {
    /// The frame for a subscriber of the whole state, in parts over the message limit.
    pub(super) whole: Vec<String>,
    /// The run's last record (`None` for a deletion).
    new: Option<Cow<'a, ActorRecord>>,
    /// The version the run starts from, and its patch (`None` when the history broke).
    from: Version,
    patch: Option<Patch>,
    /// The epoch and version the run ends at.
    to: (Epoch, Version),
}

impl RunFrame<'_> {
    /// Names the run's end (epoch, version, and whether it deleted the actor).
    pub(super) fn end(&self) -> String {
        let (epoch, version) = self.to;
        match self.new {
            Some(_) => format!("{}.{}", epoch.0, version.0),
            None => format!("{}.{}.deleted", epoch.0, version.0),
        }
    }

    /// The frame (parts) for a subscriber of `paths`: the patch operations under them (from
    /// the last version that changed the projection), a projected snapshot, or nothing when
    /// the run does not touch them.
    pub(super) fn filtered(&self, paths: &[String]) -> Option<Vec<String>> {
        match self.new {
            None => Some(self.whole.clone()),
            Some(_) => self.filtered_message(paths).map(|message| message.to_frames()),
        }
    }

    fn filtered_message(&self, paths: &[String]) -> Option<ServerMessage> {
        let new = self.new.as_deref()?;
        let projected = || ServerMessage::Snapshot {
            actor: new.actor_key.address(),
            epoch: new.epoch,
            version: new.version,
            state: projection::project(&new.state, paths),
        };
        let Some(patch) = &self.patch else {
            return Some(projected());
        };
        match projection::filter(patch, paths, &new.state) {
            Filtered::Nothing => None,
            Filtered::Snapshot => Some(projected()),
            Filtered::Patch(ops) => match last_change_of(paths, new, self.from) {
                Some(from) => Some(ServerMessage::Delta {
                    actor: new.actor_key.address(),
                    epoch: new.epoch,
                    from,
                    to: new.version,
                    patch: ops,
                }),
                None => Some(projected()),
            },
        }
    }
}

/// The last version at or before `at` whose change touched `paths` (0: none since the
/// actor was created), when `new`'s log still reaches back to it.
fn last_change_of(paths: &[String], new: &ActorRecord, at: Version) -> Option<Version> {
    let mut expected = at;
    for entry in new.log.iter().rev().filter(|e| e.v <= at) {
        if entry.v != expected {
            return None;
        }
        let step: Patch = serde_json::from_str(&entry.p).ok()?;
        if projection::touches(&step, paths, &new.state) {
            return Some(entry.v);
        }
        expected = Version(entry.v.0 - 1);
    }
    (expected == Version::NONE).then_some(Version::NONE)
}

/// The one frame for a run (consecutive changes, see [`runs`]) from `first` to `last`.
pub(super) fn frame_for_run<'a>(
    first: &ActorChange,
    last: &'a ActorChange,
    several: bool,
    registry: &ActorRegistry,
    settings: &Settings,
) -> RunFrame<'a> {
    let new = match last {
        ActorChange::Deleted { old } => {
            let full = ServerMessage::Deleted {
                actor: old.actor_key.address(),
                epoch: old.epoch,
                version: old.version,
            };
            return RunFrame {
                whole: full.to_frames(),
                new: None,
                from: Version::NONE,
                patch: None,
                to: (old.epoch, old.version),
            };
        }
        ActorChange::Created { new } | ActorChange::Updated { new, .. } => new,
    };
    let (base, base_epoch, from) = match first {
        ActorChange::Created { new } => {
            let default = registry
                .get(new.actor_key.actor_type())
                .map(|a| Cow::Owned(a.default_state()));
            (default, new.epoch, Version::NONE)
        }
        ActorChange::Updated { old, .. } => (Some(Cow::Borrowed(&old.state)), old.epoch, old.version),
        ActorChange::Deleted { .. } => (None, new.epoch, Version::NONE),
    };
    let Some(base) = base.filter(|_| base_epoch == new.epoch) else {
        return RunFrame {
            whole: snapshot_of(new).to_frames(),
            new: Some(Cow::Borrowed(new)),
            from,
            patch: None,
            to: (new.epoch, new.version),
        };
    };
    let patch = smallest_patch(&base, new, from, several, settings);
    let full = if serialized_len_exceeds(&new.state, serialized_len(&patch)) {
        ServerMessage::Delta {
            actor: new.actor_key.address(),
            epoch: new.epoch,
            from,
            to: new.version,
            patch: patch.clone(),
        }
    } else {
        snapshot_of(new)
    };
    RunFrame {
        whole: full.to_frames(),
        new: Some(Cow::Borrowed(new)),
        from,
        patch: Some(patch),
        to: (new.epoch, new.version),
    }
}

/// The patch from `base` (at `from`) to `new`: the writers' stored patches when the log covers
/// them; for several changes, the diff instead when it is smaller (an item toggled twice).
fn smallest_patch(base: &Value, new: &ActorRecord, from: Version, several: bool, settings: &Settings) -> Patch {
    let stored = changelog::patch_between(
        &new.log,
        from,
        new.version,
        new.updated_at,
        settings.change_log.retention,
    );
    match stored {
        Some(stored) if !several => stored,
        Some(stored) => {
            let diffed = delta::diff(base, &new.state);
            if serialized_len(&diffed) < serialized_len(&stored) {
                diffed
            } else {
                stored
            }
        }
        None => delta::diff(base, &new.state),
    }
}

fn snapshot_of(new: &ActorRecord) -> ServerMessage {
    ServerMessage::Snapshot {
        actor: new.actor_key.address(),
        epoch: new.epoch,
        version: new.version,
        state: new.state.clone(),
    }
}
