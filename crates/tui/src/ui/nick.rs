//! Nickname colours: the same user always gets the same colour, in every run
//! and on every machine, because it is a fixed hash of the name into a fixed
//! palette (not a random or per-process hasher).

use ratatui::style::Color;

/// Readable on dark and light backgrounds; no black, white or grey (used for
/// the UI itself).
const PALETTE: [Color; 12] = [
    Color::Red,
    Color::Green,
    Color::Yellow,
    Color::Blue,
    Color::Magenta,
    Color::Cyan,
    Color::LightRed,
    Color::LightGreen,
    Color::LightYellow,
    Color::LightBlue,
    Color::LightMagenta,
    Color::LightCyan,
];

/// The colour of `username` (FNV-1a over its lower-case bytes).
#[must_use]
pub fn colour(username: &str) -> Color {
    let mut hash: u32 = 0x811c_9dc5;
    for byte in username.to_ascii_lowercase().bytes() {
        hash ^= u32::from(byte);
        hash = hash.wrapping_mul(0x0100_0193);
    }
    PALETTE[usize::try_from(hash).unwrap_or(0) % PALETTE.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colours_are_stable_and_spread() {
        assert_eq!(colour("alice"), colour("Alice"));
        assert_eq!(colour("alice"), colour("alice"));
        // Fixed values: a change of the hash would recolour everyone.
        assert_eq!(colour(""), PALETTE[0x811c_9dc5_usize % 12]);
        let distinct: std::collections::HashSet<_> =
            ["alice", "bob", "carol", "dave", "erin", "frank"].iter().map(|u| colour(u)).collect();
        assert!(distinct.len() >= 3, "{distinct:?}");
    }
}
