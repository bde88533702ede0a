//! The `resolver.transaction()` guards open in each tokio task.
//!
//! A guard has no scope to put a task-local in (as a managed body's
//! transaction has, see `nesting`): it lives until it is committed, rolled
//! back or dropped, so it registers here under the id of the task that
//! opened it, and leaves on drop. A managed call made in that task while the
//! guard is open would begin a second transaction on another pooled
//! connection; if it touches a row the guard wrote, it waits for the guard's
//! lock while the guard's task waits for it (the guard's session idles, so
//! the database never reports a deadlock). `nesting` refuses it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{LazyLock, Mutex, MutexGuard};

use super::inner::ConflictResolver;
use crate::sync::lock;

/// How many guards are open in the process: lets a managed call skip the
/// lock below when there are none (the common case).
static OPEN: AtomicUsize = AtomicUsize::new(0);
static NEXT_TOKEN: AtomicU64 = AtomicU64::new(0);

/// Where a guard was opened: a tokio task, or a thread running a future
/// outside any task (`block_on`, which is what `#[tokio::main]` and
/// `#[tokio::test]` run their body in: such a future never leaves its
/// thread).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Place {
    Task(tokio::task::Id),
    Thread(std::thread::ThreadId),
}

impl Place {
    fn here() -> Place {
        match tokio::task::try_id() {
            Some(task) => Place::Task(task),
            None => Place::Thread(std::thread::current().id()),
        }
    }
}

type Registry = HashMap<Place, Vec<(u64, ConflictResolver)>>;

static GUARDS: LazyLock<Mutex<Registry>> = LazyLock::new(Mutex::default);

fn guards() -> MutexGuard<'static, Registry> {
    lock(&GUARDS)
}

/// A guard's place in the registry; it leaves when this is dropped.
pub(crate) struct OpenGuard {
    task: Place,
    token: u64,
}

impl OpenGuard {
    /// Registers a guard of `resolver` opened in the current task (or, in
    /// a future run by `block_on`, the current thread).
    pub(crate) fn register(resolver: &ConflictResolver) -> OpenGuard {
        let task = Place::here();
        let token = NEXT_TOKEN.fetch_add(1, Ordering::Relaxed);
        guards()
            .entry(task)
            .or_default()
            .push((token, resolver.clone()));
        OPEN.fetch_add(1, Ordering::AcqRel);
        OpenGuard { task, token }
    }
}

impl Drop for OpenGuard {
    fn drop(&mut self) {
        let mut guards = guards();
        if let Some(open) = guards.get_mut(&self.task) {
            open.retain(|(token, _)| *token != self.token);
            if open.is_empty() {
                guards.remove(&self.task);
            }
        }
        OPEN.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The resolvers of the guards open in the current task.
pub(crate) fn guards_in_this_task() -> Vec<ConflictResolver> {
    if OPEN.load(Ordering::Acquire) == 0 {
        return Vec::new();
    }
    guards()
        .get(&Place::here())
        .map(|open| open.iter().map(|(_, r)| r.clone()).collect())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_guard_is_seen_in_its_own_task_only_while_it_is_open() {
        let db = sea_orm::Database::connect("sqlite::memory:").await.unwrap();
        let resolver = ConflictResolver::new(db);
        assert!(guards_in_this_task().is_empty());
        let open = OpenGuard::register(&resolver);
        let seen = guards_in_this_task();
        assert_eq!(seen.len(), 1);
        assert_eq!(seen[0].id(), resolver.id());
        // another task does not see it
        let elsewhere = tokio::spawn(async { guards_in_this_task().len() })
            .await
            .unwrap();
        assert_eq!(elsewhere, 0);
        drop(open);
        assert!(guards_in_this_task().is_empty());
    }
}
