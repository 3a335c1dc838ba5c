//! The Admin API's pages, as Kong pages a collection (kong/api/endpoints.lua
//! `extract_options` and `get_collection_endpoint`, kong/db/strategies/postgres/init.lua
//! `page`, kong/db/dao/init.lua, kong/db/errors.lua @3.4.2): rows in primary-key order,
//! `size` 100 by default and at most 1000, `offset` the unpadded standard base64 of the JSON
//! array of the last row's key, `next` the path of the following page (with `&size=` from
//! 3.1.0), and no `offset` key on the last page.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD_NO_PAD;
use serde_json::{Value, json};

use crate::plan::version::KongVersion;

use super::facts;

const DEFAULT_SIZE: usize = 100;
const MAX_SIZE: usize = 1000;

/// What a request asks of a collection: `?size=` and `?offset=`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageRequest {
    pub size: usize,
    /// The key of the last row of the previous page.
    pub after: Option<String>,
}

/// Kong's 400 for a bad `size` or `offset`: `{code, name, message}` (kong/db/errors.lua).
#[derive(Debug, Clone, PartialEq)]
pub struct PageError(pub Value);

fn invalid_size(message: &str) -> PageError {
    PageError(json!({"code": 9, "name": "invalid size", "message": message}))
}

fn invalid_offset(offset: &str, why: &str) -> PageError {
    PageError(json!({
        "code": 7,
        "name": "invalid offset",
        "message": format!("'{offset}' is not a valid offset: {why}"),
    }))
}

/// Reads `size` and `offset` from a query.
pub fn request(size: Option<&str>, offset: Option<&str>) -> Result<PageRequest, PageError> {
    let size = match size {
        None => DEFAULT_SIZE,
        Some(text) => {
            let number: f64 = text
                .parse()
                .map_err(|_| invalid_size("size must be a number"))?;
            if number.fract() != 0.0 || !(1.0..=MAX_SIZE as f64).contains(&number) {
                return Err(invalid_size(&format!(
                    "size must be an integer between 1 and {MAX_SIZE}"
                )));
            }
            number as usize
        }
    };
    let after = match offset {
        None => None,
        Some(offset) => {
            let bytes = STANDARD_NO_PAD
                .decode(offset.trim_end_matches('='))
                .map_err(|_| invalid_offset(offset, "bad base64 encoding"))?;
            let key: Vec<String> = serde_json::from_slice(&bytes)
                .map_err(|_| invalid_offset(offset, "bad json encoding"))?;
            Some(
                key.into_iter()
                    .next()
                    .ok_or_else(|| invalid_offset(offset, "bad json encoding"))?,
            )
        }
    };
    Ok(PageRequest { size, after })
}

/// The offset of the page after the row keyed `id`.
fn offset_after(id: &str) -> String {
    STANDARD_NO_PAD.encode(json!([id]).to_string())
}

/// `ngx.escape_uri` of an offset: base64's `+` and `/` escaped.
fn escape(offset: &str) -> String {
    offset.replace('+', "%2B").replace('/', "%2F")
}

/// One page of `rows` (sorted by their key, `key`), as the body Kong sends for the
/// collection at `path` (e.g. `/clustering/data-planes`).
pub fn page<T>(
    version: KongVersion,
    path: &str,
    rows: &[T],
    key: impl Fn(&T) -> &str,
    request: &PageRequest,
    render: impl Fn(&T) -> Value,
) -> Value {
    let start = match &request.after {
        Some(after) => rows
            .iter()
            .position(|row| key(row) > after.as_str())
            .unwrap_or(rows.len()),
        None => 0,
    };
    let end = (start + request.size).min(rows.len());
    let data: Vec<Value> = rows[start..end].iter().map(render).collect();
    if end < rows.len() && end > start {
        let offset = offset_after(key(&rows[end - 1]));
        let mut next = format!("{path}?offset={}", escape(&offset));
        if facts::next_link_carries_size(version) {
            next.push_str(&format!("&size={}", request.size));
        }
        json!({"data": data, "next": next, "offset": offset})
    } else {
        json!({"data": data, "next": null})
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_offset_reads_back_as_the_last_key_of_its_page() {
        let rows = ["a", "b", "c"];
        let v: KongVersion = "3.4.2".parse().unwrap();
        let first = page(
            v,
            "/things",
            &rows,
            |r| r,
            &request(Some("2"), None).unwrap(),
            |r| json!(r),
        );
        assert_eq!(first["data"], json!(["a", "b"]));
        let offset = first["offset"].as_str().unwrap();
        assert_eq!(offset, "WyJiIl0");
        assert_eq!(first["next"], format!("/things?offset={offset}&size=2"));
        let last = page(
            v,
            "/things",
            &rows,
            |r| r,
            &request(Some("2"), Some(offset)).unwrap(),
            |r| json!(r),
        );
        assert_eq!(last, json!({"data": ["c"], "next": null}));
        let old = page(
            "2.8.5".parse().unwrap(),
            "/things",
            &rows,
            |r| r,
            &request(Some("1"), None).unwrap(),
            |r| json!(r),
        );
        assert!(!old["next"].as_str().unwrap().contains("size"));
    }

    #[test]
    fn bad_sizes_and_offsets_get_kongs_errors() {
        assert_eq!(
            request(Some("0"), None).unwrap_err().0["message"],
            "size must be an integer between 1 and 1000"
        );
        assert_eq!(
            request(Some("x"), None).unwrap_err().0["message"],
            "size must be a number"
        );
        let error = request(None, Some("!!")).unwrap_err().0;
        assert_eq!(error["name"], "invalid offset");
        assert_eq!(
            error["message"],
            "'!!' is not a valid offset: bad base64 encoding"
        );
    }
}
