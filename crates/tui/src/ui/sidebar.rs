//! The sidebar: conversations (unread count, mention and mute markers) and
//! users (online or offline, live).

use super::{
    clean,
    layout::{SidebarItem, SidebarRow, sidebar_rows},
    nick,
};
use crate::app::App;
use ratatui::{
    buffer::Buffer,
    layout::Rect,
    style::{Color, Modifier, Style},
    text::{Line, Span},
    widgets::{Block, Borders, Paragraph, Widget},
};

/// The sidebar of the chat screen.
pub struct Sidebar<'a> {
    /// What it shows.
    pub app: &'a App,
}

impl Widget for Sidebar<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let app = self.app;
        let lines: Vec<Line<'_>> = sidebar_rows(app)
            .into_iter()
            .map(|row| match row {
                SidebarRow::Header(title) => Line::from(Span::styled(
                    title,
                    Style::new().add_modifier(Modifier::BOLD | Modifier::UNDERLINED),
                )),
                SidebarRow::Blank => Line::default(),
                SidebarRow::Item(SidebarItem::Room(i)) => room_line(app, i),
                SidebarRow::Item(SidebarItem::User(i)) => user_line(app, i),
            })
            .collect();
        Paragraph::new(lines).block(Block::new().borders(Borders::RIGHT)).render(area, buf);
    }
}

fn room_line(app: &App, i: usize) -> Line<'static> {
    let room = &app.rooms[i];
    let selected = i == app.selected;
    let mut style = Style::new();
    if selected {
        style = style.add_modifier(Modifier::REVERSED);
    } else if room.unread > 0 {
        style = style.add_modifier(Modifier::BOLD);
    }
    let number = if i < 9 { format!("{} ", i + 1) } else { "  ".to_owned() };
    let mut spans = vec![
        Span::styled(number, Style::new().fg(Color::DarkGray)),
        Span::styled(clean(&room.label()), style),
    ];
    if room.unread > 0 {
        spans.push(Span::styled(format!(" {}", room.unread), Style::new().fg(Color::Yellow)));
    }
    if room.mentioned {
        spans.push(Span::styled(" @", Style::new().fg(Color::LightRed).add_modifier(Modifier::BOLD)));
    }
    if room.muted {
        spans.push(Span::styled(" ~", Style::new().fg(Color::DarkGray)));
    }
    Line::from(spans)
}

fn user_line(app: &App, i: usize) -> Line<'static> {
    let user = &app.users[i];
    let (dot, dot_style) = if user.online {
        ("● ", Style::new().fg(Color::Green))
    } else {
        ("○ ", Style::new().fg(Color::DarkGray))
    };
    let mut name_style = Style::new().fg(nick::colour(&user.username));
    if !user.online {
        name_style = name_style.add_modifier(Modifier::DIM);
    }
    if app.user_focus == Some(i) {
        name_style = name_style.add_modifier(Modifier::REVERSED);
    }
    Line::from(vec![Span::styled(dot, dot_style), Span::styled(clean(&user.username), name_style)])
}
