//! Policy documents parsed once and shared by every connection that uses them.
//!
//! Every mTLS connection compiles the policies attached to its certificate,
//! and a fleet's devices mostly share a few policies: parsing their JSON on
//! every accept was about a tenth of the emulator's CPU per connection. A
//! policy's document is kept under its name with the text it was parsed
//! from, and reused while the registry returns that same text: a new default
//! version, or a policy deleted and created again, has other text and is
//! parsed again.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use super::document::{PolicyDocument, PolicyDocumentError};

/// Policies kept at most; past it the cache starts again empty, so a
/// registry with more policies than this still works, only slower.
const MAX_DOCUMENTS: usize = 1024;

/// Parsed policy documents by policy name.
#[derive(Debug, Default)]
pub(crate) struct ParsedDocuments {
    documents: Mutex<HashMap<String, Parsed>>,
}

/// A document and the text it was parsed from.
#[derive(Debug)]
struct Parsed {
    text: String,
    document: Arc<PolicyDocument>,
}

impl ParsedDocuments {
    /// The document `text` of policy `name`: parsed the first time, shared
    /// while the policy's text stays the same.
    pub(crate) fn get(
        &self,
        name: &str,
        text: &str,
    ) -> Result<Arc<PolicyDocument>, PolicyDocumentError> {
        if let Some(parsed) = self.lock().get(name)
            && parsed.text == text
        {
            return Ok(Arc::clone(&parsed.document));
        }
        // Parsed outside the lock: connections arriving together wait for
        // the map only, not for each other's parsing.
        let document = Arc::new(PolicyDocument::parse(text)?);
        let mut documents = self.lock();
        if documents.len() >= MAX_DOCUMENTS && !documents.contains_key(name) {
            documents.clear();
        }
        documents.insert(
            name.to_owned(),
            Parsed {
                text: text.to_owned(),
                document: Arc::clone(&document),
            },
        );
        Ok(document)
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, Parsed>> {
        // The map is whole after any panic (inserts and clears only).
        self.documents
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.lock().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ONE: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iot:Connect","Resource":"*"}]}"#;
    const TWO: &str = r#"{"Version":"2012-10-17","Statement":[
        {"Effect":"Allow","Action":"iot:Connect","Resource":"*"},
        {"Effect":"Deny","Action":"iot:Publish","Resource":"*"}]}"#;

    #[test]
    fn a_policy_is_parsed_once_and_shared() {
        let cache = ParsedDocuments::default();
        let first = cache.get("p", ONE).unwrap();
        let again = cache.get("p", ONE).unwrap();
        assert!(Arc::ptr_eq(&first, &again));
        let other = cache.get("q", TWO).unwrap();
        assert_eq!(other.statement_count(), 2);
        assert_eq!(cache.len(), 2);
    }

    #[test]
    fn other_text_under_the_same_name_is_parsed_again() {
        let cache = ParsedDocuments::default();
        let old = cache.get("p", ONE).unwrap();
        // A new default version, or deleted and created again.
        let new = cache.get("p", TWO).unwrap();
        assert!(!Arc::ptr_eq(&old, &new));
        assert_eq!(new.statement_count(), 2);
        assert!(Arc::ptr_eq(&new, &cache.get("p", TWO).unwrap()));
        assert_eq!(cache.len(), 1);
    }

    #[test]
    fn a_document_that_does_not_parse_is_an_error_and_not_kept() {
        let cache = ParsedDocuments::default();
        assert!(cache.get("bad", "{not json").is_err());
        assert_eq!(cache.len(), 0);
    }

    #[test]
    fn the_cache_is_bounded() {
        let cache = ParsedDocuments::default();
        for n in 0..=MAX_DOCUMENTS {
            cache.get(&format!("p{n}"), ONE).unwrap();
        }
        assert!(cache.len() <= MAX_DOCUMENTS);
    }
}
