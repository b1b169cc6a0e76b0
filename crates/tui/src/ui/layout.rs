//! Where everything goes on the screen, computed the same way for drawing and
//! for mouse clicks.

use crate::app::App;
use ratatui::layout::{Constraint, Layout, Rect};

/// The chat screen's regions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Areas {
    /// Conversations and users, on the left.
    pub sidebar: Rect,
    /// The messages of the conversation on screen.
    pub timeline: Rect,
    /// "bob is typing…".
    pub typing: Rect,
    /// The input line(s).
    pub composer: Rect,
    /// Connection, user, server, notices.
    pub status: Rect,
}

/// A clickable row of the sidebar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SidebarItem {
    /// Conversation `i` (index into `App::rooms`).
    Room(usize),
    /// User `i` (index into `App::users`).
    User(usize),
}

/// One row of the sidebar, top to bottom.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SidebarRow {
    /// A section title.
    Header(&'static str),
    /// Nothing.
    Blank,
    /// A conversation or a user.
    Item(SidebarItem),
}

/// The sidebar's rows: conversations, then users.
#[must_use]
pub fn sidebar_rows(app: &App) -> Vec<SidebarRow> {
    let mut rows = vec![SidebarRow::Header("Conversations")];
    rows.extend((0..app.rooms.len()).map(|i| SidebarRow::Item(SidebarItem::Room(i))));
    rows.push(SidebarRow::Blank);
    rows.push(SidebarRow::Header("Users"));
    rows.extend((0..app.users.len()).map(|i| SidebarRow::Item(SidebarItem::User(i))));
    rows
}

impl Areas {
    /// The regions of a `width` × `height` terminal with `composer_lines` lines
    /// of input.
    #[must_use]
    pub fn new(width: u16, height: u16, composer_lines: u16) -> Self {
        let area = Rect::new(0, 0, width, height);
        let [main, status] = Layout::vertical([Constraint::Min(1), Constraint::Length(1)]).areas(area);
        let sidebar_width = match width {
            120.. => 26,
            70.. => 20,
            _ => 14,
        };
        let [sidebar, right] =
            Layout::horizontal([Constraint::Length(sidebar_width), Constraint::Min(10)]).areas(main);
        let composer_height = composer_lines.clamp(1, 6) + 1;
        let [timeline, typing, composer] = Layout::vertical([
            Constraint::Min(1),
            Constraint::Length(1),
            Constraint::Length(composer_height),
        ])
        .areas(right);
        Self { sidebar, timeline, typing, composer, status }
    }

    /// The sidebar row at a clicked position, if it is a conversation or a user.
    #[must_use]
    pub fn sidebar_item(&self, app: &App, x: u16, y: u16) -> Option<SidebarItem> {
        if x < self.sidebar.x || x >= self.sidebar.right() || y < self.sidebar.y || y >= self.sidebar.bottom()
        {
            return None;
        }
        match sidebar_rows(app).get(usize::from(y - self.sidebar.y))? {
            SidebarRow::Item(item) => Some(*item),
            _ => None,
        }
    }
}

/// A `width` × `height` rectangle in the middle of `area` (clipped to it).
#[must_use]
pub fn centered(area: Rect, width: u16, height: u16) -> Rect {
    let width = width.min(area.width);
    let height = height.min(area.height);
    Rect::new(area.x + (area.width - width) / 2, area.y + (area.height - height) / 2, width, height)
}
