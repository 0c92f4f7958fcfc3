//! The route table: which operation a method and a raw path name.
//!
//! Templates are AWS's `requestUri`s from the service models, e.g.
//! `/things/{thingName}/principals` or `/topics/{topic}`. A label is exactly one
//! path segment: AWS's labels are not greedy, so SDKs percent-encode a `/`
//! inside one as `%2F` (botocore `serialize.py` `_render_uri_template`), and the
//! table matches on the raw, still-encoded path before decoding each label.
//! A literal segment beats a label at the same position, so
//! `/thing-groups/addThingToThingGroup` is not read as
//! `/thing-groups/{thingGroupName}`. The query string is not part of a match.

use std::fmt;

use http::Method;
use percent_encoding::percent_decode_str;

use super::error::AwsError;

/// Why a template could not be added to the table.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub(crate) enum TemplateError {
    /// The template does not start with `/`.
    #[error("route template {0:?} must start with '/'")]
    NotAbsolute(String),
    /// A `{` `}` pair is unbalanced, empty, or shares its segment with other text.
    #[error(
        "route template {template:?}: segment {segment:?} is not a literal or a whole {{label}}"
    )]
    BadSegment {
        /// The template.
        template: String,
        /// The offending segment.
        segment: String,
    },
    /// Two labels of one template have the same name.
    #[error("route template {template:?} names label {label:?} twice")]
    DuplicateLabel {
        /// The template.
        template: String,
        /// The label named twice.
        label: String,
    },
    /// The same method and template were added twice.
    #[error("route {method} {template} is registered twice")]
    Duplicate {
        /// The method.
        method: Method,
        /// The template.
        template: String,
    },
}

/// Why no route matched.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum NoRoute {
    /// No template matches the path.
    NotFound,
    /// Templates match the path, with other methods.
    MethodNotAllowed {
        /// The methods that would match, in table order, without repeats.
        allowed: Vec<Method>,
    },
    /// A label matched but is not valid UTF-8 once percent-decoded.
    BadLabel {
        /// The label's name in the template.
        label: String,
    },
}

impl NoRoute {
    /// AWS's error for this: 404 `UnknownOperationException`, 405
    /// `MethodNotAllowedException`, or 400 `InvalidRequestException`.
    pub(crate) fn into_aws_error(self, method: &Method, raw_path: &str) -> AwsError {
        match self {
            NoRoute::NotFound => AwsError::unknown_operation(method, raw_path),
            NoRoute::MethodNotAllowed { allowed } => {
                AwsError::method_not_allowed(method, raw_path, &allowed)
            }
            NoRoute::BadLabel { label } => AwsError::invalid_request(format!(
                "{label} in {raw_path} is not valid UTF-8 once percent-decoded"
            )),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Segment {
    Literal(String),
    Label(String),
}

#[derive(Clone, Debug)]
struct Route<R> {
    method: Method,
    template: String,
    segments: Vec<Segment>,
    id: R,
}

/// The labels of a matched route, percent-decoded, in template order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Labels(Vec<(String, String)>);

impl Labels {
    #[cfg(test)]
    /// The decoded value of label `name`, if the template has it.
    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(label, _)| label == name)
            .map(|(_, value)| value.as_str())
    }

    /// Every `(name, decoded value)` pair, in template order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(n, v)| (n.as_str(), v.as_str()))
    }
}

/// A matched route: its id, its template and its decoded labels.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Matched<'t, R> {
    /// The id the route was registered with.
    pub(crate) id: &'t R,
    /// The template that matched, e.g. `/things/{thingName}`.
    pub(crate) template: &'t str,
    /// The labels, percent-decoded.
    pub(crate) labels: Labels,
}

/// Routes from `(method, template)` to an id of the caller's choice (an
/// operation enum, a name...).
#[derive(Clone)]
pub(crate) struct RouteTable<R> {
    routes: Vec<Route<R>>,
}

impl<R: fmt::Debug> fmt::Debug for RouteTable<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(
                self.routes
                    .iter()
                    .map(|r| (r.method.as_str(), r.template.as_str(), &r.id)),
            )
            .finish()
    }
}

impl<R> RouteTable<R> {
    /// Builds a table from `(method, template, id)` rows.
    pub(crate) fn new<'a>(
        rows: impl IntoIterator<Item = (Method, &'a str, R)>,
    ) -> Result<RouteTable<R>, TemplateError> {
        let mut routes: Vec<Route<R>> = Vec::new();
        for (method, template, id) in rows {
            let segments = parse_template(template)?;
            if routes
                .iter()
                .any(|r| r.method == method && same_shape(&r.segments, &segments))
            {
                return Err(TemplateError::Duplicate {
                    method,
                    template: template.to_owned(),
                });
            }
            routes.push(Route {
                method,
                template: template.to_owned(),
                segments,
                id,
            });
        }
        Ok(RouteTable { routes })
    }

    #[cfg(test)]
    /// The number of routes.
    pub(crate) fn len(&self) -> usize {
        self.routes.len()
    }

    /// The route `method` and `raw_path` (as received, still percent-encoded,
    /// without the query) name.
    pub(crate) fn find(&self, method: &Method, raw_path: &str) -> Result<Matched<'_, R>, NoRoute> {
        let Some(rest) = raw_path.strip_prefix('/') else {
            return Err(NoRoute::NotFound);
        };
        let parts: Vec<&str> = rest.split('/').collect();
        let mut best: Option<&Route<R>> = None;
        let mut allowed: Vec<Method> = Vec::new();
        for route in &self.routes {
            if !matches(&route.segments, &parts) {
                continue;
            }
            if route.method != *method {
                if !allowed.contains(&route.method) {
                    allowed.push(route.method.clone());
                }
                continue;
            }
            if best.is_none_or(|b| more_specific(&route.segments, &b.segments)) {
                best = Some(route);
            }
        }
        let Some(route) = best else {
            return Err(if allowed.is_empty() {
                NoRoute::NotFound
            } else {
                NoRoute::MethodNotAllowed { allowed }
            });
        };
        let mut labels = Vec::new();
        for (segment, part) in route.segments.iter().zip(&parts) {
            if let Segment::Label(name) = segment {
                let value =
                    percent_decode_str(part)
                        .decode_utf8()
                        .map_err(|_| NoRoute::BadLabel {
                            label: name.clone(),
                        })?;
                labels.push((name.clone(), value.into_owned()));
            }
        }
        Ok(Matched {
            id: &route.id,
            template: &route.template,
            labels: Labels(labels),
        })
    }
}

fn parse_template(template: &str) -> Result<Vec<Segment>, TemplateError> {
    let Some(rest) = template.strip_prefix('/') else {
        return Err(TemplateError::NotAbsolute(template.to_owned()));
    };
    let mut segments = Vec::new();
    for part in rest.split('/') {
        let bad = || TemplateError::BadSegment {
            template: template.to_owned(),
            segment: part.to_owned(),
        };
        let segment = match part.strip_prefix('{').and_then(|p| p.strip_suffix('}')) {
            Some(name) if !name.is_empty() && !name.contains(['{', '}']) => {
                if segments.contains(&Segment::Label(name.to_owned())) {
                    return Err(TemplateError::DuplicateLabel {
                        template: template.to_owned(),
                        label: name.to_owned(),
                    });
                }
                Segment::Label(name.to_owned())
            }
            Some(_) => return Err(bad()),
            None if part.contains(['{', '}']) => return Err(bad()),
            None => Segment::Literal(part.to_owned()),
        };
        segments.push(segment);
    }
    Ok(segments)
}

/// Whether two templates match the same paths (label names aside).
fn same_shape(a: &[Segment], b: &[Segment]) -> bool {
    a.len() == b.len()
        && a.iter().zip(b).all(|(x, y)| match (x, y) {
            (Segment::Literal(x), Segment::Literal(y)) => x == y,
            (Segment::Label(_), Segment::Label(_)) => true,
            _ => false,
        })
}

/// Whether `segments` match the raw path `parts`: same count, literals equal
/// byte for byte, labels non-empty.
fn matches(segments: &[Segment], parts: &[&str]) -> bool {
    segments.len() == parts.len()
        && segments.iter().zip(parts).all(|(s, p)| match s {
            Segment::Literal(l) => l == p,
            Segment::Label(_) => !p.is_empty(),
        })
}

/// Whether `a` is more specific than `b` (both match the same path): at the
/// first position where they differ in kind, `a` has the literal.
fn more_specific(a: &[Segment], b: &[Segment]) -> bool {
    for (x, y) in a.iter().zip(b) {
        match (x, y) {
            (Segment::Literal(_), Segment::Label(_)) => return true,
            (Segment::Label(_), Segment::Literal(_)) => return false,
            _ => {}
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, Eq)]
    enum Op {
        DescribeThing,
        CreateThing,
        ListThingPrincipals,
        Publish,
        AddThingToThingGroup,
        DescribeThingGroup,
        ListThings,
    }

    fn table() -> RouteTable<Op> {
        RouteTable::new([
            (Method::GET, "/things/{thingName}", Op::DescribeThing),
            (Method::POST, "/things/{thingName}", Op::CreateThing),
            (
                Method::GET,
                "/things/{thingName}/principals",
                Op::ListThingPrincipals,
            ),
            (Method::POST, "/topics/{topic}", Op::Publish),
            (
                Method::GET,
                "/thing-groups/{thingGroupName}",
                Op::DescribeThingGroup,
            ),
            (
                Method::GET,
                "/thing-groups/addThingToThingGroup",
                Op::AddThingToThingGroup,
            ),
            (Method::GET, "/things", Op::ListThings),
        ])
        .unwrap()
    }

    #[test]
    fn a_label_is_one_segment_percent_decoded() {
        let t = table();
        let m = t.find(&Method::POST, "/topics/a%2Fb%2F%24aws").unwrap();
        assert_eq!(m.id, &Op::Publish);
        assert_eq!(m.template, "/topics/{topic}");
        assert_eq!(m.labels.get("topic"), Some("a/b/$aws"));
        assert_eq!(m.labels.get("other"), None);
        assert_eq!(
            t.find(&Method::POST, "/topics/a/b"),
            Err(NoRoute::NotFound),
            "an unencoded '/' makes another segment"
        );
    }

    #[test]
    fn the_method_picks_among_routes_of_one_path() {
        let t = table();
        assert_eq!(
            t.find(&Method::GET, "/things/t1").unwrap().id,
            &Op::DescribeThing
        );
        assert_eq!(
            t.find(&Method::POST, "/things/t1").unwrap().id,
            &Op::CreateThing
        );
        let m = t.find(&Method::GET, "/things/t%201/principals").unwrap();
        assert_eq!(m.id, &Op::ListThingPrincipals);
        assert_eq!(m.labels.iter().collect::<Vec<_>>(), [("thingName", "t 1")]);
        assert_eq!(t.find(&Method::GET, "/things").unwrap().id, &Op::ListThings);
    }

    #[test]
    fn a_literal_beats_a_label_whatever_the_order_of_registration() {
        let t = table();
        assert_eq!(
            t.find(&Method::GET, "/thing-groups/addThingToThingGroup")
                .unwrap()
                .id,
            &Op::AddThingToThingGroup
        );
        assert_eq!(
            t.find(&Method::GET, "/thing-groups/g").unwrap().id,
            &Op::DescribeThingGroup
        );
    }

    #[test]
    fn unknown_paths_and_wrong_methods_are_told_apart() {
        let t = table();
        assert_eq!(t.find(&Method::GET, "/nothing"), Err(NoRoute::NotFound));
        assert_eq!(t.find(&Method::GET, ""), Err(NoRoute::NotFound));
        assert_eq!(t.find(&Method::GET, "/things/"), Err(NoRoute::NotFound));
        assert_eq!(t.find(&Method::GET, "/things/t/"), Err(NoRoute::NotFound));
        assert_eq!(
            t.find(&Method::DELETE, "/things/t"),
            Err(NoRoute::MethodNotAllowed {
                allowed: vec![Method::GET, Method::POST]
            })
        );
        let error = t
            .find(&Method::DELETE, "/things/t")
            .unwrap_err()
            .into_aws_error(&Method::DELETE, "/things/t");
        assert_eq!(error.code(), "MethodNotAllowedException");
        assert_eq!(error.status(), http::StatusCode::METHOD_NOT_ALLOWED);
        let error = NoRoute::NotFound.into_aws_error(&Method::GET, "/x");
        assert_eq!(error.code(), "UnknownOperationException");
        assert_eq!(error.status(), http::StatusCode::NOT_FOUND);
    }

    #[test]
    fn a_label_that_is_not_utf8_is_a_bad_request() {
        let t = table();
        assert_eq!(
            t.find(&Method::GET, "/things/%FF"),
            Err(NoRoute::BadLabel {
                label: "thingName".into()
            })
        );
        assert_eq!(
            NoRoute::BadLabel {
                label: "thingName".into()
            }
            .into_aws_error(&Method::GET, "/things/%FF")
            .code(),
            "InvalidRequestException"
        );
    }

    #[test]
    fn bad_templates_are_refused() {
        let bad = |template: &str| RouteTable::new([(Method::GET, template, ())]).unwrap_err();
        assert!(matches!(bad("things"), TemplateError::NotAbsolute(_)));
        assert!(matches!(
            bad("/things/{}"),
            TemplateError::BadSegment { .. }
        ));
        assert!(matches!(
            bad("/things/{a"),
            TemplateError::BadSegment { .. }
        ));
        assert!(matches!(
            bad("/things/x{a}"),
            TemplateError::BadSegment { .. }
        ));
        assert!(matches!(
            bad("/things/{a}/{a}"),
            TemplateError::DuplicateLabel { .. }
        ));
        let twice = RouteTable::new([(Method::GET, "/a/{x}", ()), (Method::GET, "/a/{y}", ())]);
        assert!(matches!(twice, Err(TemplateError::Duplicate { .. })));
        assert_eq!(table().len(), 7);
    }
}
