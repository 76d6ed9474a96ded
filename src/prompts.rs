//! Prompt templates: named files in the prompts folder (TOML front matter between `+++`
//! lines, then a minijinja template), rendered into a chat request's system message.
//! The library is swapped whole on reload (SIGHUP), so running streams never notice.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use minijinja::{Environment, UndefinedBehavior};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// One template, as listed by `GET /v1/prompts/{name}`.
#[derive(Clone, Debug, Serialize)]
pub struct Prompt {
    pub name: String,
    pub description: String,
    /// Every variable the template uses, sorted.
    pub variables: Vec<String>,
    /// Values used when a request leaves a variable out.
    pub defaults: Map<String, Value>,
    pub template: String,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct FrontMatter {
    #[serde(default)]
    description: String,
    #[serde(default)]
    defaults: Map<String, Value>,
}

#[derive(Debug, thiserror::Error)]
pub enum PromptError {
    #[error("prompt `{0}` not found")]
    NotFound(String),
    #[error("prompt `{name}` needs variable `{variable}`")]
    MissingVariable { name: String, variable: String },
    #[error("prompt `{name}` could not be rendered: {detail}")]
    Render { name: String, detail: String },
    #[error("prompt file {path}: {detail}")]
    Load { path: PathBuf, detail: String },
}

/// All templates of one load.
struct Library {
    env: Environment<'static>,
    prompts: BTreeMap<String, Prompt>,
}

/// The templates in use; cheap to clone.
#[derive(Clone)]
pub struct Prompts {
    dir: PathBuf,
    library: Arc<RwLock<Arc<Library>>>,
}

impl Prompts {
    /// Loads every `*.md` in `dir` (a missing folder is an empty library).
    pub fn load(dir: &Path) -> Result<Self, PromptError> {
        let library = load_library(dir)?;
        Ok(Self {
            dir: dir.to_owned(),
            library: Arc::new(RwLock::new(Arc::new(library))),
        })
    }

    /// No templates (when the folder could not be read at all).
    pub fn empty(dir: &Path) -> Self {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        let library = Library {
            env,
            prompts: BTreeMap::new(),
        };
        Self {
            dir: dir.to_owned(),
            library: Arc::new(RwLock::new(Arc::new(library))),
        }
    }

    /// Loads the folder again; on error the previous templates stay in use.
    pub fn reload(&self) -> Result<usize, PromptError> {
        let library = load_library(&self.dir)?;
        let count = library.prompts.len();
        *self
            .library
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(library);
        Ok(count)
    }

    fn current(&self) -> Arc<Library> {
        Arc::clone(
            &self
                .library
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        )
    }

    pub fn list(&self) -> Vec<Prompt> {
        self.current().prompts.values().cloned().collect()
    }

    pub fn get(&self, name: &str) -> Result<Prompt, PromptError> {
        self.current()
            .prompts
            .get(name)
            .cloned()
            .ok_or_else(|| PromptError::NotFound(name.to_owned()))
    }

    /// Renders `name` with `variables` over its defaults.
    pub fn render(
        &self,
        name: &str,
        variables: &Map<String, Value>,
    ) -> Result<String, PromptError> {
        let library = self.current();
        let prompt = library
            .prompts
            .get(name)
            .ok_or_else(|| PromptError::NotFound(name.to_owned()))?;
        let mut context = prompt.defaults.clone();
        // Only the template's own variables: a request cannot shadow a built-in function.
        context.extend(
            variables
                .iter()
                .filter(|(k, _)| prompt.variables.contains(*k))
                .map(|(k, v)| (k.clone(), v.clone())),
        );
        if let Some(variable) = prompt.variables.iter().find(|v| !context.contains_key(*v)) {
            return Err(PromptError::MissingVariable {
                name: name.to_owned(),
                variable: variable.clone(),
            });
        }
        let render = |e: minijinja::Error| PromptError::Render {
            name: name.to_owned(),
            detail: e.to_string(),
        };
        library
            .env
            .get_template(name)
            .map_err(render)?
            .render(&context)
            .map_err(render)
    }
}

fn load_library(dir: &Path) -> Result<Library, PromptError> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    let mut prompts = BTreeMap::new();
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Library { env, prompts }),
        Err(e) => {
            return Err(PromptError::Load {
                path: dir.to_owned(),
                detail: e.to_string(),
            });
        }
    };
    let mut paths: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.extension().is_some_and(|x| x == "md") && p.file_stem().is_some_and(|s| s != "README")
        })
        .collect();
    paths.sort();
    for path in paths {
        let load = |detail: String| PromptError::Load {
            path: path.clone(),
            detail,
        };
        let text = std::fs::read_to_string(&path).map_err(|e| load(e.to_string()))?;
        let (front, template) = split_front_matter(&text);
        let front: FrontMatter = toml::from_str(front).map_err(|e| load(e.to_string()))?;
        let name = path
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or_default()
            .to_owned();
        env.add_template_owned(name.clone(), template.to_owned())
            .map_err(|e| load(e.to_string()))?;
        let compiled = env.get_template(&name).map_err(|e| load(e.to_string()))?;
        // Built-ins such as `range` are not variables a request must give.
        let variables: BTreeSet<String> = compiled
            .undeclared_variables(false)
            .into_iter()
            .filter(|v| env.globals().all(|(global, _)| global != v))
            .collect();
        prompts.insert(
            name.clone(),
            Prompt {
                name,
                description: front.description,
                variables: variables.into_iter().collect(),
                defaults: front.defaults,
                template: template.to_owned(),
            },
        );
    }
    Ok(Library { env, prompts })
}

/// `+++\n<toml>\n+++\n<template>`; a file without front matter is all template.
fn split_front_matter(text: &str) -> (&str, &str) {
    let Some(rest) = text.strip_prefix("+++\n") else {
        return ("", text);
    };
    match rest.split_once("\n+++\n") {
        Some((front, template)) => (front, template.trim_start_matches('\n')),
        None => ("", text),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn library(files: &[(&str, &str)]) -> (Prompts, PathBuf) {
        let dir = std::env::temp_dir().join(format!("tr-prompts-{:x}", rand::random::<u64>()));
        std::fs::create_dir_all(&dir).unwrap();
        for (name, text) in files {
            std::fs::write(dir.join(name), text).unwrap();
        }
        (Prompts::load(&dir).unwrap(), dir)
    }

    #[test]
    fn renders_with_defaults_and_names_the_missing_variable() {
        let (prompts, _) = library(&[(
            "greet.md",
            "+++\ndescription = \"Greets\"\n[defaults]\ntone = \"warm\"\n+++\nHello {{ name }}, in a {{ tone }} tone.",
        )]);
        let p = prompts.get("greet").unwrap();
        assert_eq!(p.variables, ["name", "tone"]);
        assert_eq!(p.description, "Greets");
        let mut vars = Map::new();
        vars.insert("name".into(), "Ada".into());
        assert_eq!(
            prompts.render("greet", &vars).unwrap(),
            "Hello Ada, in a warm tone."
        );
        let missing = prompts.render("greet", &Map::new()).unwrap_err();
        assert!(
            matches!(missing, PromptError::MissingVariable { ref variable, .. } if variable == "name")
        );
        assert!(matches!(
            prompts.render("nope", &vars),
            Err(PromptError::NotFound(_))
        ));
    }

    #[test]
    fn reload_swaps_the_library_and_a_broken_file_keeps_the_old_one() {
        let (prompts, dir) = library(&[("a.md", "one")]);
        std::fs::write(dir.join("a.md"), "two").unwrap();
        assert_eq!(prompts.reload().unwrap(), 1);
        assert_eq!(prompts.render("a", &Map::new()).unwrap(), "two");
        std::fs::write(dir.join("a.md"), "{% if %}").unwrap();
        assert!(prompts.reload().is_err());
        assert_eq!(prompts.render("a", &Map::new()).unwrap(), "two");
    }

    #[test]
    fn built_in_functions_are_not_variables_and_cannot_be_shadowed() {
        let (prompts, _) = library(&[("count.md", "{% for i in range(n) %}{{ i }}{% endfor %}")]);
        assert_eq!(prompts.get("count").unwrap().variables, ["n"]);
        let mut vars = Map::new();
        vars.insert("n".into(), 3.into());
        vars.insert("range".into(), "oops".into());
        assert_eq!(prompts.render("count", &vars).unwrap(), "012");
    }

    #[test]
    fn the_shipped_examples_load() {
        let prompts =
            Prompts::load(Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/prompts"))).unwrap();
        assert!(prompts.list().len() >= 3);
    }
}
