//! [`Room`]: one conversation as the TUI holds it — the loaded part of its
//! history, unread state, scroll position.

use conclave_client::store::StoredMessage;
use conclave_proto::{MessageId, RoomKind, Seq};

/// One line of a conversation's timeline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Item {
    /// A message.
    Message(StoredMessage),
    /// A membership change or other note, for people.
    Note {
        /// The text (untrusted).
        text: String,
        /// When it was noticed, Unix milliseconds.
        at_ms: i64,
    },
}

/// What the last drawing of the timeline measured, so scrolling knows when the
/// top of the loaded history is reached.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct View {
    /// Lines the loaded history takes at the current width.
    pub total_lines: usize,
    /// Lines visible.
    pub height: usize,
}

/// A conversation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Room {
    /// The room's name on the server: `lobby`, a group name, or `@user`.
    pub name: String,
    /// Lobby, public or private group, direct conversation.
    pub kind: RoomKind,
    /// The loaded part of the history, in room order, with notes among it.
    pub items: Vec<Item>,
    /// Messages from others that arrived while the room was not on screen.
    pub unread: usize,
    /// Whether one of them mentions the user.
    pub mentioned: bool,
    /// `/mute`: no bell or notification (except for mentions).
    pub muted: bool,
    /// Where the "new messages" marker goes: the first message that arrived
    /// unseen. Kept while the room is on screen, cleared when the user leaves it.
    pub unread_from: Option<Seq>,
    /// Whether the newest messages were loaded (the room was opened).
    pub loaded: bool,
    /// Whether the start of the local history is loaded.
    pub complete: bool,
    /// A page of older messages has been asked for and not arrived yet.
    pub loading_older: bool,
    /// How many lines the view is scrolled up from the newest line.
    pub scroll: usize,
    /// The last drawing's measurements.
    pub view: View,
    /// The message selected for `/delete`.
    pub selected: Option<MessageId>,
}

impl Room {
    /// An empty, unloaded room.
    #[must_use]
    pub fn new(name: &str, kind: RoomKind) -> Self {
        Self {
            name: name.to_owned(),
            kind,
            items: Vec::new(),
            unread: 0,
            mentioned: false,
            muted: false,
            unread_from: None,
            loaded: false,
            complete: false,
            loading_older: false,
            scroll: 0,
            view: View::default(),
            selected: None,
        }
    }

    /// The name as shown: `#lobby`, `#team`, `@bob`.
    #[must_use]
    pub fn label(&self) -> String {
        if self.name.starts_with('@') { self.name.clone() } else { format!("#{}", self.name) }
    }

    /// Sort key of the sidebar: the lobby, then groups, then direct
    /// conversations, each by name.
    #[must_use]
    pub fn order(&self) -> (u8, String) {
        let rank = match self.kind {
            RoomKind::Lobby => 0,
            RoomKind::Public | RoomKind::Private => 1,
            RoomKind::Direct => 2,
        };
        (rank, self.name.clone())
    }

    /// The messages, in order.
    pub fn messages(&self) -> impl DoubleEndedIterator<Item = &StoredMessage> {
        self.items.iter().filter_map(|i| match i {
            Item::Message(m) => Some(m),
            Item::Note { .. } => None,
        })
    }

    /// The oldest loaded message's sequence number.
    #[must_use]
    pub fn oldest_seq(&self) -> Option<Seq> {
        self.messages().next().map(|m| m.seq)
    }

    /// Adds a message in sequence order; `false` if it was there already.
    pub fn insert(&mut self, message: StoredMessage) -> bool {
        // Usually the newest: search from the end.
        let mut at = self.items.len();
        for (i, item) in self.items.iter().enumerate().rev() {
            if let Item::Message(m) = item {
                if m.seq == message.seq {
                    return false;
                }
                if m.seq < message.seq {
                    break;
                }
                at = i;
            }
        }
        self.items.insert(at, Item::Message(message));
        true
    }

    /// Merges the newest page of the history: messages missing in it but within
    /// its range were deleted meanwhile and go.
    pub fn merge_newest(&mut self, messages: Vec<StoredMessage>) {
        if let Some(first) = messages.first().map(|m| m.seq) {
            let keep: std::collections::HashSet<Seq> = messages.iter().map(|m| m.seq).collect();
            self.items.retain(|i| match i {
                Item::Message(m) => m.seq < first || keep.contains(&m.seq),
                Item::Note { .. } => true,
            });
        }
        for message in messages {
            self.insert(message);
        }
    }

    /// Adds a page of older messages in front.
    pub fn prepend(&mut self, messages: Vec<StoredMessage>) {
        for message in messages {
            self.insert(message);
        }
    }

    /// Removes a deleted message; `true` if it was loaded.
    pub fn remove(&mut self, id: MessageId) -> bool {
        let before = self.items.len();
        self.items.retain(|i| !matches!(i, Item::Message(m) if m.id == id));
        if self.selected == Some(id) {
            self.selected = None;
        }
        self.items.len() != before
    }

    /// Adds a note at the end.
    pub fn note(&mut self, text: String, at_ms: i64) {
        self.items.push(Item::Note { text, at_ms });
    }

    /// Moves the selection one message older (`-1`) or newer (`+1`).
    pub fn select_step(&mut self, older: bool) {
        let ids: Vec<MessageId> = self.messages().map(|m| m.id).collect();
        let current = self.selected.and_then(|id| ids.iter().position(|i| *i == id));
        self.selected = match (current, older) {
            (None, true) => ids.last().copied(),
            (None, false) => None,
            (Some(0), true) => ids.first().copied(),
            (Some(i), true) => ids.get(i - 1).copied(),
            (Some(i), false) => ids.get(i + 1).copied(),
        };
    }

    /// Whether the view shows the top of what is loaded.
    #[must_use]
    pub fn at_top(&self) -> bool {
        self.scroll + self.view.height >= self.view.total_lines
    }
}
