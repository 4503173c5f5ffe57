//! [`NameIndex`]: node ids by a name the nodes themselves hold (their own name, or the weight
//! they read), without a second copy of the names.
//!
//! An entry is the name's hash and the node id; a lookup returns the ids filed under the hash
//! and the caller confirms the name on the node. Compared with a `HashMap<String, NodeId>`,
//! adding a node allocates nothing, growing the table re-reads no name, and cloning or
//! dropping a graph copies or frees no name twice.

use super::NodeId;
use hashbrown::HashTable;
use std::hash::BuildHasher;

/// A multimap from hashed names to node ids (see the module documentation).
#[derive(Clone, Debug, Default)]
pub(crate) struct NameIndex {
    table: HashTable<(u64, NodeId)>,
}

impl NameIndex {
    /// The hash a name is filed under.
    pub(crate) fn hash(name: &str) -> u64 {
        rustc_hash::FxBuildHasher.hash_one(name)
    }

    /// Files `id` under the name whose hash is `hash`, unless it already is.
    pub(crate) fn insert(&mut self, hash: u64, id: NodeId) {
        if self.table.find(hash, |e| *e == (hash, id)).is_none() {
            self.table.insert_unique(hash, (hash, id), |e| e.0);
        }
    }

    /// The ids filed under the name whose hash is `hash` (a superset of the nodes with that
    /// name: the caller checks the name).
    pub(crate) fn candidates(&self, hash: u64) -> impl Iterator<Item = NodeId> + '_ {
        self.table.iter_hash(hash).filter(move |e| e.0 == hash).map(|e| e.1)
    }

    /// Removes `id` from the entries filed under the name whose hash is `hash`.
    pub(crate) fn remove(&mut self, hash: u64, id: NodeId) {
        while let Ok(e) = self.table.find_entry(hash, |e| *e == (hash, id)) {
            e.remove();
        }
    }
}
