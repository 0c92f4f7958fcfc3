//! Policy documents parsed once and shared by every connection that uses them.
//!
//! Every mTLS connection compiles the policies attached to its certificate,
//! and a fleet's devices mostly share a few policies: parsing their JSON on
//! every accept was about a tenth of the emulator's CPU per connection. A
//! document is kept under its policy name and version with the text it was
//! parsed from, and reused only while the registry returns that same text
//! (a policy deleted and created again restarts at version 1 with other
//! text).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use super::document::{PolicyDocument, PolicyDocumentError};

/// Documents kept at most; past it the cache starts again empty, so a
/// registry with more policy versions than this still works, only slower.
const MAX_DOCUMENTS: usize = 1024;

/// Parsed policy documents by policy name and version.
#[derive(Debug, Default)]
pub(crate) struct ParsedDocuments {
    documents: Mutex<HashMap<(String, u32), Parsed>>,
}

/// A document and the text it was parsed from.
#[derive(Debug)]
struct Parsed {
    text: String,
    document: Arc<PolicyDocument>,
}

impl ParsedDocuments {
    /// Version `version` of policy `name`, whose document is `text`: parsed
    /// the first time, shared after.
    pub(crate) fn get(
        &self,
        name: &str,
        version: u32,
        text: &str,
    ) -> Result<Arc<PolicyDocument>, PolicyDocumentError> {
        let key = (name.to_owned(), version);
        if let Some(parsed) = self.lock().get(&key)
            && parsed.text == text
        {
            return Ok(Arc::clone(&parsed.document));
        }
        // Parsed outside the lock: connections arriving together wait for
        // the map only, not for each other's parsing.
        let document = Arc::new(PolicyDocument::parse(text)?);
        let mut documents = self.lock();
        if documents.len() >= MAX_DOCUMENTS {
            documents.clear();
        }
        documents.insert(
            key,
            Parsed {
                text: text.to_owned(),
                document: Arc::clone(&document),
            },
        );
        Ok(document)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(String, u32), Parsed>> {
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
    fn a_version_is_parsed_once_and_shared() {
        let cache = ParsedDocuments::default();
        let first = cache.get("p", 1, ONE).unwrap();
        let again = cache.get("p", 1, ONE).unwrap();
        assert!(Arc::ptr_eq(&first, &again));
        let other = cache.get("p", 2, TWO).unwrap();
        assert_eq!(other.statement_count(), 2);
        assert_eq!(cache.len(), 2);
    }

    #[test]
    fn other_text_under_the_same_name_and_version_is_parsed_again() {
        let cache = ParsedDocuments::default();
        let old = cache.get("p", 1, ONE).unwrap();
        // Deleted and created again: version 1 again, another document.
        let new = cache.get("p", 1, TWO).unwrap();
        assert!(!Arc::ptr_eq(&old, &new));
        assert_eq!(new.statement_count(), 2);
        assert!(Arc::ptr_eq(&new, &cache.get("p", 1, TWO).unwrap()));
    }

    #[test]
    fn a_document_that_does_not_parse_is_an_error_and_not_kept() {
        let cache = ParsedDocuments::default();
        assert!(cache.get("bad", 1, "{not json").is_err());
        assert_eq!(cache.len(), 0);
    }

    #[test]
    fn the_cache_is_bounded() {
        let cache = ParsedDocuments::default();
        for version in 0..=u32::try_from(MAX_DOCUMENTS).unwrap() {
            cache.get("p", version, ONE).unwrap();
        }
        assert!(cache.len() <= MAX_DOCUMENTS);
    }
}
