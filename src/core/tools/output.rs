//! Output caps: the model gets a bounded result with an explicit note when something
//! was cut, never a silent truncation.

/// Characters of one tool result the model receives at most.
pub const MAX_RESULT_CHARS: usize = 50_000;

/// Cuts `text` to at most `max` characters, appending a note saying how much was dropped.
pub fn truncate_chars(text: String, max: usize) -> String {
    let Some((cut, _)) = text.char_indices().nth(max) else {
        return text;
    };
    let dropped = text[cut..].chars().count();
    let mut out = text;
    out.truncate(cut);
    out.push_str(&format!(
        "\n[output truncated: {dropped} more characters not shown]"
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_text_is_untouched_and_long_text_says_what_was_cut() {
        assert_eq!(truncate_chars("héllo".into(), 5), "héllo");
        assert_eq!(
            truncate_chars("héllo world".into(), 5),
            "héllo\n[output truncated: 6 more characters not shown]"
        );
    }
}
