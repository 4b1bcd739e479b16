//! Natural ("human") ordering of file names: `2.png` before `10.png`.

use std::cmp::Ordering;

/// A maximal run of ASCII digits or of other characters.
#[derive(Clone, Copy)]
enum Token<'a> {
    Num(&'a str),
    Text(&'a str),
}

struct Tokens<'a> {
    rest: &'a str,
}

impl<'a> Iterator for Tokens<'a> {
    type Item = Token<'a>;
    fn next(&mut self) -> Option<Token<'a>> {
        let first = self.rest.chars().next()?;
        let digit = first.is_ascii_digit();
        let end = self
            .rest
            .char_indices()
            .find(|(_, c)| c.is_ascii_digit() != digit)
            .map_or(self.rest.len(), |(i, _)| i);
        let (tok, rest) = self.rest.split_at(end);
        self.rest = rest;
        Some(if digit {
            Token::Num(tok)
        } else {
            Token::Text(tok)
        })
    }
}

fn cmp_token(a: Token<'_>, b: Token<'_>) -> Ordering {
    match (a, b) {
        (Token::Num(x), Token::Num(y)) => {
            let x = x.trim_start_matches('0');
            let y = y.trim_start_matches('0');
            // Same-length digit strings without leading zeros compare like their values.
            x.len().cmp(&y.len()).then_with(|| x.cmp(y))
        }
        (Token::Num(_), Token::Text(_)) => Ordering::Less,
        (Token::Text(_), Token::Num(_)) => Ordering::Greater,
        (Token::Text(x), Token::Text(y)) => x
            .chars()
            .flat_map(char::to_lowercase)
            .cmp(y.chars().flat_map(char::to_lowercase)),
    }
}

/// Compares two names the way a person would: runs of digits compare by value
/// (`"2.png" < "10.png"`, `"img_9" < "img_10"`), other text case-insensitively.
///
/// This is a total order (ties such as `"007"` vs `"7"` or `"A"` vs `"a"` are broken by plain
/// byte order), so it is safe to use with any sort.
///
/// ```
/// use emstudio_core::stack::natural_cmp;
/// use std::cmp::Ordering;
/// assert_eq!(natural_cmp("2.png", "10.png"), Ordering::Less);
/// assert_eq!(natural_cmp("img_10", "img_9"), Ordering::Greater);
/// ```
pub fn natural_cmp(a: &str, b: &str) -> Ordering {
    let mut ta = Tokens { rest: a };
    let mut tb = Tokens { rest: b };
    loop {
        match (ta.next(), tb.next()) {
            (None, None) => return a.cmp(b),
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (Some(x), Some(y)) => match cmp_token(x, y) {
                Ordering::Equal => {}
                other => return other,
            },
        }
    }
}

/// Sorts names in place with [`natural_cmp`].
///
/// ```
/// use emstudio_core::stack::sort_natural;
/// let mut names = vec!["10.png".to_string(), "2.png".to_string(), "1.png".to_string()];
/// sort_natural(&mut names);
/// assert_eq!(names, ["1.png", "2.png", "10.png"]);
/// ```
pub fn sort_natural(names: &mut [String]) {
    names.sort_by(|a, b| natural_cmp(a, b));
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn digits_compare_by_value() {
        let mut v: Vec<String> = ["10.png", "2.png", "1.png", "img_10", "img_9", "IMG_8", "a"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        sort_natural(&mut v);
        assert_eq!(
            v,
            ["1.png", "2.png", "10.png", "a", "IMG_8", "img_9", "img_10"]
        );
    }

    #[test]
    fn zero_padded_and_unpadded_names_interleave_by_value() {
        assert_eq!(natural_cmp("0009.png", "10.png"), Ordering::Less);
        assert_eq!(natural_cmp("z0100", "z99"), Ordering::Greater);
        // Ties by value are still strictly ordered.
        assert_ne!(natural_cmp("007", "7"), Ordering::Equal);
        assert_eq!(natural_cmp("x", "x"), Ordering::Equal);
    }

    proptest! {
        #[test]
        fn is_a_total_order(a in "[a-cA-C0-2._]{0,6}", b in "[a-cA-C0-2._]{0,6}", c in "[a-cA-C0-2._]{0,6}") {
            // antisymmetry
            prop_assert_eq!(natural_cmp(&a, &b), natural_cmp(&b, &a).reverse());
            // equality only for identical strings
            prop_assert_eq!(natural_cmp(&a, &b) == Ordering::Equal, a == b);
            // transitivity
            if natural_cmp(&a, &b) != Ordering::Greater && natural_cmp(&b, &c) != Ordering::Greater {
                prop_assert_ne!(natural_cmp(&a, &c), Ordering::Greater);
            }
        }

        #[test]
        fn numbers_sort_numerically(x in 0u32..100_000, y in 0u32..100_000, pad in 0usize..3) {
            let a = format!("slice_{:0pad$}.tif", x, pad = pad + 1);
            let b = format!("slice_{y}.tif");
            if x != y {
                prop_assert_eq!(natural_cmp(&a, &b), x.cmp(&y));
            }
        }
    }
}
