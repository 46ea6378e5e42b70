"""livefix language server (pygls): `python -m livefix.lsp`. See docs/lsp.md.

Modules, one job each: `server` wires LSP features to the rest; `documents` keeps a
parsed snapshot per document version; `definitions` locates definitions with `ast`
(`recovery` finds the module-level statements of a text that does not parse);
`modules` names a file's module; `actions` builds the code actions; `drift` compares
what runs with what a document says; `persist` builds minimal edits with libcst;
`options` reads initialization options; `errors` turns refusals into LSP messages;
`text` holds line and indentation helpers.
"""
