//! `GET …/Messages.json` (filtered, newest first, paged as Twilio pages) and
//! `GET …/Messages/{Sid}.json`.

use std::sync::Arc;

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::NaiveDate;
use serde_json::json;

use super::{authorize, wait_latency};
use crate::error::TwilioError;
use crate::message::{parse_rfc2822, Message};
use crate::state::{Shared, Stored};

/// Default and largest `PageSize`.
const DEFAULT_PAGE_SIZE: usize = 50;
const MAX_PAGE_SIZE: usize = 1000;

/// The filters Twilio accepts, in the order its page URIs repeat them.
const FILTERS: [&str; 5] = ["To", "From", "DateSent", "DateSent<", "DateSent>"];

pub(super) async fn list(
    State(shared): State<Arc<Shared>>,
    path: Result<Path<String>, PathRejection>,
    uri: Uri,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    shared.inner().list_calls += 1;
    wait_latency(&shared).await;
    let account_sid = path.map(|Path(sid)| sid).unwrap_or_default();
    if let Err(error) = authorize(&shared, &headers, &account_sid, uri.path()) {
        return error.into_response();
    }
    match page(&shared, uri.path(), query.as_deref().unwrap_or("")) {
        Ok(page) => Json(page).into_response(),
        Err(error) => error.into_response(),
    }
}

pub(super) async fn fetch(
    State(shared): State<Arc<Shared>>,
    path: Result<Path<(String, String)>, PathRejection>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    wait_latency(&shared).await;
    let (account_sid, file) = path.map(|Path(p)| p).unwrap_or_default();
    if let Err(error) = authorize(&shared, &headers, &account_sid, uri.path()) {
        return error.into_response();
    }
    let found = file.strip_suffix(".json").and_then(|sid| shared.inner().get(sid).map(|s| s.message.clone()));
    match found {
        Some(message) => Json(message).into_response(),
        None => TwilioError::not_found(uri.path()).into_response(),
    }
}

/// The list's query, read.
struct Query {
    filters: Vec<(&'static str, String)>,
    page_size: usize,
    page: usize,
    page_token: Option<String>,
}

impl Query {
    fn parse(raw: &str) -> Result<Self, TwilioError> {
        let pairs: Vec<(String, String)> =
            serde_urlencoded::from_str(raw).map_err(|_| TwilioError::bad_request("The query string is not valid"))?;
        let mut query = Query { filters: Vec::new(), page_size: DEFAULT_PAGE_SIZE, page: 0, page_token: None };
        for (name, value) in pairs {
            if let Some(&filter) = FILTERS.iter().find(|f| **f == name) {
                if filter.starts_with("DateSent") && parse_day(&value).is_none() {
                    return Err(TwilioError::bad_request(format!("Invalid {name}: {value}")));
                }
                query.filters.retain(|(f, _)| *f != filter);
                query.filters.push((filter, value));
                continue;
            }
            let number =
                || value.parse::<usize>().map_err(|_| TwilioError::bad_request(format!("Invalid {name}: {value}")));
            match name.as_str() {
                "PageSize" => query.page_size = number()?.clamp(1, MAX_PAGE_SIZE),
                "Page" => query.page = number()?,
                "PageToken" => query.page_token = Some(value),
                _ => {}
            }
        }
        query.filters.sort_by_key(|(f, _)| FILTERS.iter().position(|x| x == f));
        Ok(query)
    }

    fn keeps(&self, m: &Message) -> bool {
        let day_sent = || m.date_sent.as_deref().and_then(parse_rfc2822).map(|d| d.date_naive());
        self.filters.iter().all(|(name, value)| match *name {
            "To" => m.to == *value,
            "From" => m.from.as_deref() == Some(value.as_str()),
            "DateSent" => day_sent().is_some_and(|d| Some(d) == parse_day(value)),
            "DateSent<" => day_sent().is_some_and(|d| parse_day(value).is_some_and(|v| d <= v)),
            "DateSent>" => day_sent().is_some_and(|d| parse_day(value).is_some_and(|v| d >= v)),
            _ => true,
        })
    }

    /// A page URI: the filters, `PageSize`, `Page`, and a `PageToken` when given.
    fn uri(&self, path: &str, page: usize, token: Option<&str>) -> String {
        let mut pairs: Vec<(&str, String)> = self.filters.iter().map(|(name, value)| (*name, value.clone())).collect();
        pairs.push(("PageSize", self.page_size.to_string()));
        pairs.push(("Page", page.to_string()));
        if let Some(token) = token {
            pairs.push(("PageToken", token.to_owned()));
        }
        format!("{path}?{}", serde_urlencoded::to_string(pairs).unwrap_or_default())
    }
}

/// A `DateSent` value: `YYYY-MM-DD`, possibly followed by a time.
fn parse_day(value: &str) -> Option<NaiveDate> {
    NaiveDate::parse_from_str(value.get(..10)?, "%Y-%m-%d").ok()
}

/// One page of the list, as Twilio shapes it.
fn page(shared: &Shared, path: &str, raw_query: &str) -> Result<serde_json::Value, TwilioError> {
    let query = Query::parse(raw_query)?;
    let inner = shared.inner();
    let all = inner.newest_first(|m| query.keeps(m));
    let size = query.page_size;
    // Twilio's tokens: `PA` + the last SID of the previous page (the page after it), `PB`
    // + the first SID of the next page (the page before it).
    let (lo, hi) = match query.page_token.as_deref() {
        None => {
            let lo = query.page.saturating_mul(size).min(all.len());
            (lo, lo.saturating_add(size).min(all.len()))
        }
        Some(token) => {
            let invalid = || TwilioError::bad_request(format!("Invalid PageToken: {token}"));
            let (direction, sid) = token.split_at_checked(2).ok_or_else(invalid)?;
            let anchor = inner.get(sid).map(Stored::order_key).ok_or_else(invalid)?;
            // First position at or past the anchor (the list is newest first).
            let at = all.partition_point(|s| s.order_key() > anchor);
            let past = all.partition_point(|s| s.order_key() >= anchor);
            match direction {
                "PA" => (past, past.saturating_add(size).min(all.len())),
                "PB" => (at.saturating_sub(size), at),
                _ => return Err(invalid()),
            }
        }
    };
    let items = all.get(lo..hi).unwrap_or_default();
    let start = query.page.saturating_mul(size);
    let end = start + items.len().saturating_sub(1);
    let next = match items.last() {
        Some(last) if hi < all.len() => Some(query.uri(path, query.page + 1, Some(&format!("PA{}", last.message.sid)))),
        _ => None,
    };
    let previous = match items.first() {
        Some(first) if query.page > 0 && lo > 0 => {
            Some(query.uri(path, query.page - 1, Some(&format!("PB{}", first.message.sid))))
        }
        _ => None,
    };
    let messages: Vec<&Message> = items.iter().map(|s| &s.message).collect();
    Ok(json!({
        "messages": messages,
        "end": end,
        "first_page_uri": query.uri(path, 0, None),
        "next_page_uri": next,
        "page": query.page,
        "page_size": size,
        "previous_page_uri": previous,
        "start": start,
        "uri": query.uri(path, query.page, query.page_token.as_deref()),
    }))
}
