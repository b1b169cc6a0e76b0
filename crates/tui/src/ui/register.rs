//! Registration: the TOTP QR code full-size with the `otpauth://` URI under
//! it and the confirming code; then the recovery codes, shown once.

use super::{clean, layout::centered};
use crate::app::Enrolment;
use ratatui::{
    Frame,
    layout::{Constraint, Layout, Rect},
    style::{Color, Modifier, Style},
    text::{Line, Span},
    widgets::{Block, Borders, Clear, Paragraph, Wrap},
};

/// The QR code, URI, secret and code field.
pub fn draw_enrolment(frame: &mut Frame<'_>, area: Rect, enrol: &Enrolment) {
    let qr = conclave_client::totp::qr_code(&enrol.uri).unwrap_or_else(|err| err.to_string());
    let qr_lines: Vec<&str> = qr.lines().collect();
    let qr_height = u16::try_from(qr_lines.len()).unwrap_or(u16::MAX);
    let qr_width = qr_lines.iter().map(|l| l.chars().count()).max().unwrap_or(0);
    let dim = Style::new().fg(Color::DarkGray);
    let mut text = vec![
        Line::from(vec![Span::styled("URI:    ", dim), Span::raw(enrol.uri.clone())]),
        Line::from(vec![
            Span::styled("Secret: ", dim),
            Span::raw(enrol.secret.clone()),
            Span::styled(" (SHA-1, 6 digits, 30 seconds)", dim),
        ]),
        Line::from(vec![
            Span::styled("Code from the app: ", Style::new().add_modifier(Modifier::BOLD)),
            Span::styled(
                format!("{:_<6}", enrol.code),
                Style::new().fg(Color::White).add_modifier(Modifier::UNDERLINED),
            ),
        ]),
    ];
    if enrol.busy {
        text.push(Line::styled("registering…", Style::new().fg(Color::Yellow)));
    } else if let Some(error) = &enrol.error {
        text.push(Line::styled(clean(error), Style::new().fg(Color::LightRed)));
    } else {
        text.push(Line::styled("Enter: create the account · Esc: back", dim));
    }
    let [title, qr_area, text_area] =
        Layout::vertical([Constraint::Length(2), Constraint::Min(1), Constraint::Length(6)]).areas(area);
    let fits = qr_area.height >= qr_height && usize::from(qr_area.width) >= qr_width;
    let heading = if fits {
        format!(
            "Two-factor authentication for {}: scan this QR code with your authenticator app",
            clean(&enrol.user)
        )
    } else {
        format!(
            "Enlarge the terminal to at least {}×{} to see the whole QR code, or use the URI",
            qr_width,
            qr_height + 8
        )
    };
    frame.render_widget(
        Paragraph::new(vec![
            Line::styled(heading, Style::new().add_modifier(Modifier::BOLD)),
            Line::default(),
        ]),
        title,
    );
    // Full size: one module per half cell; never scaled (a scaled QR code does
    // not scan). Dark terminal background around it gives the quiet zone.
    let x_pad = qr_area.width.saturating_sub(u16::try_from(qr_width).unwrap_or(u16::MAX)) / 2;
    let qr_rect = Rect::new(qr_area.x + x_pad, qr_area.y, qr_area.width - x_pad, qr_area.height);
    frame.render_widget(Paragraph::new(qr_lines.iter().map(|l| Line::raw(*l)).collect::<Vec<_>>()), qr_rect);
    frame.render_widget(
        Paragraph::new(text).block(Block::new().borders(Borders::TOP)).wrap(Wrap { trim: false }),
        text_area,
    );
    let code_x = text_area.x + 19 + u16::try_from(enrol.code.len()).unwrap_or(0);
    if !enrol.busy {
        frame.set_cursor_position((code_x.min(text_area.right().saturating_sub(1)), text_area.y + 1 + 2));
    }
}

/// The one-time recovery codes.
pub fn draw_recovery_codes(frame: &mut Frame<'_>, area: Rect, codes: &[String]) {
    let mut lines = vec![
        Line::styled("Your account is ready.", Style::new().add_modifier(Modifier::BOLD)),
        Line::default(),
        Line::raw("Recovery codes: each one replaces an authenticator code once, if you lose your"),
        Line::raw("authenticator. They are shown only this once: store them safely (a password"),
        Line::raw("manager, or paper), not on this computer alone."),
        Line::default(),
    ];
    lines.extend(
        codes.iter().map(|c| Line::styled(format!("    {}", clean(c)), Style::new().fg(Color::Yellow))),
    );
    lines.push(Line::default());
    lines.push(Line::styled("Press Enter to start chatting.", Style::new().fg(Color::DarkGray)));
    let height = u16::try_from(lines.len() + 2).unwrap_or(u16::MAX);
    let rect = centered(area, 84, height);
    frame.render_widget(Clear, rect);
    frame.render_widget(
        Paragraph::new(lines).block(Block::new().borders(Borders::ALL).title(" Recovery codes ")),
        rect,
    );
}
