//! One-line text editing for every field (forms, dialogs, the filter):
//! insert anywhere, Left/Right/Home/End, Backspace/Delete, Ctrl-U, Ctrl-W.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

/// A cursor kept as characters from the end of the text, so that a field
/// built with text and a default cursor starts with the cursor at the end.
pub type Back = usize;

fn byte_at(text: &str, chars: usize) -> usize {
    text.char_indices()
        .nth(chars)
        .map_or(text.len(), |(i, _)| i)
}

/// The cursor as a character index from the start.
pub fn cursor_index(text: &str, back: Back) -> usize {
    text.chars().count().saturating_sub(back)
}

/// Edits `text` with `key` at the cursor; true when the key was used.
pub fn edit_line(text: &mut String, back: &mut Back, key: &KeyEvent) -> bool {
    let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
    let len = text.chars().count();
    *back = (*back).min(len);
    let at = len - *back;
    match key.code {
        KeyCode::Char('u') if ctrl => {
            // Delete to the start of the line, as in readline.
            let b = byte_at(text, at);
            text.replace_range(..b, "");
        }
        KeyCode::Char('w') if ctrl => {
            // Delete the word before the cursor (and the spaces after it).
            let chars: Vec<char> = text.chars().collect();
            let mut start = at;
            while start > 0 && chars[start - 1] == ' ' {
                start -= 1;
            }
            while start > 0 && chars[start - 1] != ' ' && chars[start - 1] != '/' {
                start -= 1;
            }
            if start == at && start > 0 {
                start -= 1; // a lone separator
            }
            let (a, b) = (byte_at(text, start), byte_at(text, at));
            text.replace_range(a..b, "");
        }
        KeyCode::Char('a') if ctrl => *back = len,
        KeyCode::Char('e') if ctrl => *back = 0,
        KeyCode::Char(c) if !ctrl => {
            let b = byte_at(text, at);
            text.insert(b, c);
        }
        KeyCode::Backspace if at > 0 => {
            let b = byte_at(text, at - 1);
            text.remove(b);
        }
        KeyCode::Delete if *back > 0 => {
            let b = byte_at(text, at);
            text.remove(b);
            *back -= 1;
        }
        KeyCode::Left => *back = (*back + 1).min(len),
        KeyCode::Right => *back = back.saturating_sub(1),
        KeyCode::Home => *back = len,
        KeyCode::End => *back = 0,
        KeyCode::Backspace | KeyCode::Delete => {}
        _ => return false,
    }
    true
}

/// The text split at the cursor, for drawing a cursor between the halves.
pub fn split_at_cursor(text: &str, back: Back) -> (&str, &str) {
    text.split_at(byte_at(text, cursor_index(text, back)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn k(code: KeyCode) -> KeyEvent {
        KeyEvent::new(code, KeyModifiers::NONE)
    }

    fn ctrl(c: char) -> KeyEvent {
        KeyEvent::new(KeyCode::Char(c), KeyModifiers::CONTROL)
    }

    #[test]
    fn edits_anywhere_in_the_line() {
        let mut t = String::from("hello wörld");
        let mut b = 0;
        for key in [k(KeyCode::Left), k(KeyCode::Left), k(KeyCode::Left)] {
            edit_line(&mut t, &mut b, &key);
        }
        edit_line(&mut t, &mut b, &k(KeyCode::Char('X')));
        assert_eq!(t, "hello wöXrld");
        edit_line(&mut t, &mut b, &k(KeyCode::Delete));
        assert_eq!(t, "hello wöXld");
        edit_line(&mut t, &mut b, &k(KeyCode::Backspace));
        assert_eq!(t, "hello wöld");
        assert_eq!(split_at_cursor(&t, b), ("hello wö", "ld"));
        edit_line(&mut t, &mut b, &k(KeyCode::Home));
        edit_line(&mut t, &mut b, &k(KeyCode::Char('>')));
        assert_eq!(t, ">hello wöld");
        edit_line(&mut t, &mut b, &k(KeyCode::End));
        edit_line(&mut t, &mut b, &ctrl('w'));
        assert_eq!(t, ">hello ");
        edit_line(&mut t, &mut b, &k(KeyCode::Left));
        edit_line(&mut t, &mut b, &ctrl('u'));
        assert_eq!((t.as_str(), b), (" ", 1));
        assert!(!edit_line(&mut t, &mut b, &k(KeyCode::Enter)));
    }

    #[test]
    fn ctrl_w_stops_at_path_separators() {
        let mut t = String::from("dir/sub/name");
        let mut b = 0;
        edit_line(&mut t, &mut b, &ctrl('w'));
        assert_eq!(t, "dir/sub/");
        edit_line(&mut t, &mut b, &ctrl('w'));
        assert_eq!(t, "dir/sub");
    }
}
