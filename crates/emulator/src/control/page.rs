//! Pagination of the List operations: `maxResults`/`pageSize` checked against
//! the operation's limit, and an opaque token that resumes after the last item
//! of the previous page.

use super::ControlError;

/// One page of a listing, and the token for the next one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Page<T> {
    /// The items of this page.
    pub(crate) items: Vec<T>,
    /// The token that asks for the next page; `None` on the last page.
    pub(crate) next: Option<String>,
}

/// The page of `items` (sorted by `key`, keys unique) that starts after the
/// item `token` names, with at most `size` items (`default` when `None`; at
/// most `limit`).
pub(crate) fn paginate<T>(
    items: Vec<T>,
    key: impl Fn(&T) -> &str,
    token: Option<&str>,
    size: Option<i64>,
    default: usize,
    limit: usize,
) -> Result<Page<T>, ControlError> {
    let size = match size {
        None => default,
        Some(n) if n >= 1 && usize::try_from(n).is_ok_and(|n| n <= limit) => n as usize,
        Some(n) => {
            return Err(ControlError::invalid(format!(
                "the page size {n} is out of range: give 1 to {limit}"
            )));
        }
    };
    let after = match token {
        None | Some("") => None,
        Some(token) => Some(decode(token).ok_or_else(|| {
            ControlError::invalid(format!("the pagination token {token:?} is not valid"))
        })?),
    };
    let mut rest: Vec<T> = match &after {
        None => items,
        Some(after) => items
            .into_iter()
            .filter(|item| key(item) > after.as_str())
            .collect(),
    };
    let next = (rest.len() > size).then(|| encode(key(&rest[size - 1])));
    rest.truncate(size);
    Ok(Page { items: rest, next })
}

/// Tokens are the hex of the last key seen, so that they are opaque to
/// clients and carry any character.
fn encode(key: &str) -> String {
    hex::encode(key)
}

fn decode(token: &str) -> Option<String> {
    String::from_utf8(hex::decode(token).ok()?).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("thing-{i:02}")).collect()
    }

    #[test]
    fn pages_cover_every_item_once_in_order() {
        let all = names(7);
        let mut seen = Vec::new();
        let mut token = None;
        loop {
            let page = paginate(all.clone(), |s| s, token.as_deref(), Some(3), 50, 250).unwrap();
            assert!(page.items.len() <= 3);
            seen.extend(page.items);
            match page.next {
                Some(next) => token = Some(next),
                None => break,
            }
        }
        assert_eq!(seen, all);
    }

    #[test]
    fn an_exact_fit_has_no_next_token() {
        let page = paginate(names(3), |s| s, None, Some(3), 50, 250).unwrap();
        assert_eq!(page.items.len(), 3);
        assert_eq!(page.next, None);
    }

    #[test]
    fn sizes_out_of_range_and_bad_tokens_are_invalid_requests() {
        for size in [0, -1, 251] {
            let err = paginate(names(3), |s| s, None, Some(size), 50, 250).unwrap_err();
            assert_eq!(err.code(), super::super::ErrorCode::InvalidRequest);
        }
        let err = paginate(names(3), |s| s, Some("zz"), None, 50, 250).unwrap_err();
        assert!(err.message().contains("token"), "{err}");
    }
}
