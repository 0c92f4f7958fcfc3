//! The intrinsic functions of provisioning templates: `Ref`, `Fn::Join`,
//! `Fn::Sub`, `Fn::Select`, `Fn::Split` and `Fn::FindInMap`, with
//! CloudFormation's syntax (AWS IoT developer guide, "Provisioning templates",
//! "Intrinsic functions"):
//!
//! * `{"Ref": "Name"}`: the value of parameter `Name` (or a pseudo parameter
//!   such as `AWS::IoT::Certificate::Id`);
//! * `{"Fn::Join": ["-", ["a", {"Ref": "B"}]]}`: the values joined by the delimiter;
//! * `{"Fn::Sub": "dev-${Serial}"}` or `{"Fn::Sub": ["${a}-${Serial}", {"a": "x"}]}`:
//!   `${Name}` replaced by a variable or parameter; `${!Name}` is the literal
//!   `${Name}` (how a policy variable such as `${!iot:Connection.Thing.ThingName}`
//!   is written inside `Fn::Sub`);
//! * `{"Fn::Select": [1, ["a", "b"]]}`: one element of a list;
//! * `{"Fn::Split": [",", "a,b"]}`: a string cut into a list;
//! * `{"Fn::FindInMap": ["Map", "key", "name"]}`: a value of the `Mappings` section.
//!
//! A function is a JSON object with one key, `Ref` or `Fn::…`. [`check`] looks
//! at a template's functions once, when the template is created (shape,
//! parameter and map names); [`evaluate`] computes them at each RegisterThing.
//! Errors are sentences naming the path of the value at fault.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

/// The intrinsic functions provisioning templates support.
const FUNCTIONS: [&str; 6] = [
    "Ref",
    "Fn::Join",
    "Fn::Sub",
    "Fn::Select",
    "Fn::Split",
    "Fn::FindInMap",
];

/// What names resolve to while evaluating.
pub(crate) struct Scope<'a> {
    /// Parameter values (pseudo parameters included).
    pub(crate) parameters: &'a BTreeMap<String, String>,
    /// The template's `Mappings`.
    pub(crate) mappings: &'a Map<String, Value>,
}

/// What names may refer to, for [`check`].
pub(crate) struct Names<'a> {
    /// Whether a `Ref` / `${…}` name is a declared or pseudo parameter.
    pub(crate) is_parameter: &'a dyn Fn(&str) -> bool,
    /// The template's `Mappings`.
    pub(crate) mappings: &'a Map<String, Value>,
}

/// The function a value calls, if it is a function object.
fn as_call(value: &Value) -> Option<(&str, &Value)> {
    let Value::Object(map) = value else {
        return None;
    };
    if map.len() != 1 {
        return None;
    }
    let (name, args) = map.iter().next()?;
    (name == "Ref" || name.starts_with("Fn::")).then_some((name.as_str(), args))
}

/// A scalar as the string templates use: strings as they are, numbers and
/// booleans as JSON text.
pub(crate) fn scalar_string(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// The `N` arguments of function `name`, or why they are not `N`.
fn args_of<'v, const N: usize>(
    name: &str,
    args: &'v Value,
    path: &str,
) -> Result<&'v [Value; N], String> {
    match args {
        Value::Array(items) => <&[Value; N]>::try_from(items.as_slice()).ok(),
        _ => None,
    }
    .ok_or_else(|| format!("{path}: {name} takes a list of {N} arguments"))
}

/// Checks the functions in `value` (at `path`) without evaluating them: known
/// names, argument shapes, parameters that exist, maps that exist.
pub(crate) fn check(value: &Value, names: &Names<'_>, path: &str) -> Result<(), String> {
    let Some((name, args)) = as_call(value) else {
        return match value {
            Value::Object(map) => map
                .iter()
                .try_for_each(|(key, v)| check(v, names, &format!("{path}.{key}"))),
            Value::Array(items) => items
                .iter()
                .enumerate()
                .try_for_each(|(i, v)| check(v, names, &format!("{path}[{i}]"))),
            _ => Ok(()),
        };
    };
    let path = format!("{path}.{name}");
    match name {
        "Ref" => match args {
            Value::String(target) if (names.is_parameter)(target) => Ok(()),
            Value::String(target) => Err(format!(
                "{path}: '{target}' is not a parameter of the template: declare it in Parameters"
            )),
            _ => Err(format!("{path}: Ref takes a parameter name")),
        },
        "Fn::Join" => {
            let [delimiter, list] = args_of(name, args, &path)?;
            if !delimiter.is_string() {
                return Err(format!("{path}: the delimiter must be a string"));
            }
            check(list, names, &path)
        }
        "Fn::Sub" => {
            let (text, variables) = match args {
                Value::String(text) => (text, None),
                Value::Array(items) => match items.as_slice() {
                    [Value::String(text), Value::Object(variables)] => (text, Some(variables)),
                    _ => return Err(sub_shape(&path)),
                },
                _ => return Err(sub_shape(&path)),
            };
            if let Some(variables) = variables {
                for (key, v) in variables {
                    check(v, names, &format!("{path}.{key}"))?;
                }
            }
            substitute(text, &path, |variable| {
                let known = variables.is_some_and(|v| v.contains_key(variable))
                    || (names.is_parameter)(variable);
                known.then(String::new)
            })
            .map(drop)
        }
        "Fn::Select" | "Fn::Split" => {
            let [first, second] = args_of(name, args, &path)?;
            if name == "Fn::Split" && !first.is_string() {
                return Err(format!("{path}: the delimiter must be a string"));
            }
            check(first, names, &path)?;
            check(second, names, &path)
        }
        "Fn::FindInMap" => {
            let items: &[Value; 3] = args_of(name, args, &path)?;
            if let Value::String(map) = &items[0] {
                if !names.mappings.contains_key(map) {
                    return Err(format!(
                        "{path}: there is no map '{map}' in the Mappings section"
                    ));
                }
            }
            items.iter().try_for_each(|v| check(v, names, &path))
        }
        other => Err(unsupported(&path, other)),
    }
}

fn sub_shape(path: &str) -> String {
    format!("{path}: Fn::Sub takes a string, or a list of a string and an object of variables")
}

fn unsupported(path: &str, name: &str) -> String {
    format!(
        "{path}: unsupported intrinsic function {name}; provisioning templates support {}",
        FUNCTIONS.join(", ")
    )
}

/// Evaluates the functions in `value` (at `path`).
pub(crate) fn evaluate(value: &Value, scope: &Scope<'_>, path: &str) -> Result<Value, String> {
    let Some((name, args)) = as_call(value) else {
        return match value {
            Value::Object(map) => map
                .iter()
                .map(|(key, v)| Ok((key.clone(), evaluate(v, scope, &format!("{path}.{key}"))?)))
                .collect::<Result<Map<_, _>, String>>()
                .map(Value::Object),
            Value::Array(items) => items
                .iter()
                .enumerate()
                .map(|(i, v)| evaluate(v, scope, &format!("{path}[{i}]")))
                .collect::<Result<Vec<_>, _>>()
                .map(Value::Array),
            scalar => Ok(scalar.clone()),
        };
    };
    let path = format!("{path}.{name}");
    let string = |value: &Value, what: &str| -> Result<String, String> {
        let value = evaluate(value, scope, &path)?;
        scalar_string(&value).ok_or_else(|| format!("{path}: {what} must be a string, not {value}"))
    };
    match name {
        "Ref" => {
            let Value::String(target) = args else {
                return Err(format!("{path}: Ref takes a parameter name"));
            };
            scope
                .parameters
                .get(target)
                .map(|v| Value::String(v.clone()))
                .ok_or_else(|| format!("{path}: parameter '{target}' has no value"))
        }
        "Fn::Join" => {
            let [delimiter, list] = args_of(name, args, &path)?;
            let Value::String(delimiter) = delimiter else {
                return Err(format!("{path}: the delimiter must be a string"));
            };
            let Value::Array(items) = evaluate(list, scope, &path)? else {
                return Err(format!("{path}: the values to join must be a list"));
            };
            let parts = items
                .iter()
                .map(|item| {
                    scalar_string(item)
                        .ok_or_else(|| format!("{path}: cannot join {item}: not a string"))
                })
                .collect::<Result<Vec<_>, _>>()?;
            Ok(Value::String(parts.join(delimiter)))
        }
        "Fn::Sub" => {
            let (text, variables) = match args {
                Value::String(text) => (text, Map::new()),
                Value::Array(items) => match items.as_slice() {
                    [Value::String(text), Value::Object(variables)] => (text, variables.clone()),
                    _ => return Err(sub_shape(&path)),
                },
                _ => return Err(sub_shape(&path)),
            };
            let mut values = BTreeMap::new();
            for (key, v) in &variables {
                values.insert(key.clone(), string(v, &format!("variable {key}"))?);
            }
            substitute(text, &path, |variable| {
                values
                    .get(variable)
                    .or_else(|| scope.parameters.get(variable))
                    .cloned()
            })
            .map(Value::String)
        }
        "Fn::Select" => {
            let [index, list] = args_of(name, args, &path)?;
            let index = string(index, "the index")?;
            let index: usize = index.parse().map_err(|_| {
                format!("{path}: the index {index:?} is not a non-negative integer")
            })?;
            let Value::Array(items) = evaluate(list, scope, &path)? else {
                return Err(format!("{path}: the values to select from must be a list"));
            };
            match items.get(index) {
                Some(Value::Null) | None => Err(format!(
                    "{path}: index {index} is out of range of a list of {} values",
                    items.len()
                )),
                Some(item) => Ok(item.clone()),
            }
        }
        "Fn::Split" => {
            let [delimiter, source] = args_of(name, args, &path)?;
            let Value::String(delimiter) = delimiter else {
                return Err(format!("{path}: the delimiter must be a string"));
            };
            if delimiter.is_empty() {
                return Err(format!("{path}: the delimiter must not be empty"));
            }
            let source = string(source, "the value to split")?;
            Ok(Value::Array(
                source
                    .split(delimiter.as_str())
                    .map(|s| Value::String(s.to_owned()))
                    .collect(),
            ))
        }
        "Fn::FindInMap" => {
            let items: &[Value; 3] = args_of(name, args, &path)?;
            let map = string(&items[0], "the map name")?;
            let first = string(&items[1], "the first key")?;
            let second = string(&items[2], "the second key")?;
            scope
                .mappings
                .get(&map)
                .and_then(|m| m.get(&first))
                .and_then(|m| m.get(&second))
                .cloned()
                .ok_or_else(|| format!("{path}: Mappings has no value {map}.{first}.{second}"))
        }
        other => Err(unsupported(&path, other)),
    }
}

/// Replaces each `${name}` of `text` with `lookup(name)`, and each `${!name}`
/// with the literal `${name}`.
fn substitute(
    text: &str,
    path: &str,
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else {
            return Err(format!("{path}: '${{' without a closing '}}' in {text:?}"));
        };
        let name = &after[..end];
        if let Some(literal) = name.strip_prefix('!') {
            out.push_str("${");
            out.push_str(literal);
            out.push('}');
        } else {
            let value = lookup(name).ok_or_else(|| {
                format!(
                    "{path}: ${{{name}}} is neither a parameter nor a variable of Fn::Sub \
                     (write ${{!{name}}} for the literal text, e.g. a policy variable)"
                )
            })?;
            out.push_str(&value);
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn scope_eval(value: Value) -> Result<Value, String> {
        let parameters: BTreeMap<String, String> = [
            ("Serial", "A1"),
            ("Csv", "x,y,z"),
            ("Two", "2"),
            ("Location", "Seattle"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        let mappings = json!({"Sites": {"Seattle": {"Url": "https://example.test"}}})
            .as_object()
            .cloned()
            .expect("an object");
        evaluate(
            &value,
            &Scope {
                parameters: &parameters,
                mappings: &mappings,
            },
            "v",
        )
    }

    #[test]
    fn functions_evaluate_like_cloudformation() {
        let cases = [
            (json!({"Ref": "Serial"}), json!("A1")),
            (
                json!({"Fn::Join": ["-", ["dev", {"Ref": "Serial"}, 7]]}),
                json!("dev-A1-7"),
            ),
            (json!({"Fn::Join": ["", []]}), json!("")),
            (json!({"Fn::Sub": "dev-${Serial}"}), json!("dev-A1")),
            (
                json!({"Fn::Sub": ["${p}/${Serial}/${!iot:ClientId}", {"p": {"Ref": "Location"}}]}),
                json!("Seattle/A1/${iot:ClientId}"),
            ),
            (
                json!({"Fn::Select": [1, {"Fn::Split": [",", {"Ref": "Csv"}]}]}),
                json!("y"),
            ),
            (
                json!({"Fn::Select": [{"Ref": "Two"}, ["a", "b", "c"]]}),
                json!("c"),
            ),
            (
                json!({"Fn::FindInMap": ["Sites", {"Ref": "Location"}, "Url"]}),
                json!("https://example.test"),
            ),
            (
                json!({"a": [{"Ref": "Serial"}, {"b": {"Fn::Sub": "${Serial}"}}], "c": 1}),
                json!({"a": ["A1", {"b": "A1"}], "c": 1}),
            ),
            // An object with two keys is data, not a function.
            (
                json!({"Ref": "Serial", "other": 1}),
                json!({"Ref": "Serial", "other": 1}),
            ),
        ];
        for (input, expected) in cases {
            assert_eq!(scope_eval(input.clone()), Ok(expected), "{input}");
        }
    }

    #[test]
    fn failures_name_the_path_and_the_problem() {
        let cases = [
            (json!({"Ref": "Nope"}), "parameter 'Nope' has no value"),
            (json!({"Fn::Select": [5, ["a"]]}), "out of range"),
            (
                json!({"Fn::Select": ["x", ["a"]]}),
                "not a non-negative integer",
            ),
            (json!({"Fn::Sub": "${Nope}"}), "${!Nope}"),
            (json!({"Fn::Sub": "${Serial"}), "without a closing"),
            (json!({"Fn::Join": ["-", "ab"]}), "must be a list"),
            (json!({"Fn::Join": ["-", [["a"]]]}), "not a string"),
            (
                json!({"Fn::FindInMap": ["Sites", "Nowhere", "Url"]}),
                "Sites.Nowhere.Url",
            ),
            (
                json!({"Fn::GetAtt": ["a", "b"]}),
                "unsupported intrinsic function",
            ),
            (json!({"Fn::Split": ["", "a"]}), "must not be empty"),
        ];
        for (input, needle) in cases {
            let err = scope_eval(input.clone()).unwrap_err();
            assert!(err.starts_with("v."), "{err}");
            assert!(err.contains(needle), "{input}: {err}");
        }
    }

    #[test]
    fn check_finds_shape_and_name_errors_before_any_registration() {
        let mappings = json!({"Sites": {}})
            .as_object()
            .cloned()
            .expect("an object");
        let declared = |name: &str| name == "Serial" || name == "AWS::IoT::Certificate::Id";
        let names = Names {
            is_parameter: &declared,
            mappings: &mappings,
        };
        let ok = json!({"a": {"Fn::Join": ["-", [{"Ref": "Serial"}, {"Fn::Sub": ["${x}${Serial}${!y}", {"x": "1"}]}]]},
                        "b": {"Fn::FindInMap": ["Sites", {"Ref": "Serial"}, "k"]},
                        "c": {"Fn::Select": [0, {"Fn::Split": [",", "a,b"]}]},
                        "d": {"Ref": "AWS::IoT::Certificate::Id"}});
        check(&ok, &names, "t").unwrap();
        let cases = [
            (json!({"Ref": "Other"}), "declare it in Parameters"),
            (json!({"Ref": 3}), "takes a parameter name"),
            (json!({"Fn::Join": ["-"]}), "list of 2 arguments"),
            (json!({"Fn::Join": [1, []]}), "delimiter must be a string"),
            (json!({"Fn::Sub": "${Other}"}), "neither a parameter"),
            (json!({"Fn::Sub": 3}), "Fn::Sub takes"),
            (
                json!({"Fn::FindInMap": ["Nope", "a", "b"]}),
                "no map 'Nope'",
            ),
            (json!({"x": [{"Fn::If": []}]}), "t.x[0].Fn::If: unsupported"),
        ];
        for (input, needle) in cases {
            let err = check(&input, &names, "t").unwrap_err();
            assert!(err.contains(needle), "{input}: {err}");
        }
    }
}
