-- Plays a Neovim user, after the configuration from docs/lsp.md was loaded as init.lua:
-- opens a Python file, lists the code actions, chooses Apply and Reload (what the
-- stand-in nvim-dap session received is recorded), forwards a `livefix/applied` event
-- as nvim-dap would deliver it, reads the diagnostics Neovim shows, chooses Persist and
-- reads the buffer back. Everything it saw goes to a JSON file; then Neovim quits.
-- Only APIs that Neovim 0.7 has, or that it checks for, are used.
local spec = vim.fn.json_decode(table.concat(vim.fn.readfile(os.getenv("LIVEFIX_NVIM_SPEC")), "\n"))
local result = { requests = {} }
local dap = require("dap")

local function save_and_quit()
  result.requests = dap.requests
  vim.fn.writefile({ vim.fn.json_encode(result) }, spec.result)
  vim.cmd("qall!")
end

local function livefix_client()
  for _, client in pairs((vim.lsp.get_clients or vim.lsp.get_active_clients)()) do
    if client.name == "livefix" then
      return client
    end
  end
end

local function titles_at(buf, line)
  local params = {
    textDocument = { uri = vim.uri_from_bufnr(buf) },
    range = { start = { line = line, character = 4 }, ["end"] = { line = line, character = 4 } },
    context = { diagnostics = {} },
  }
  local ok, responses = pcall(vim.lsp.buf_request_sync, buf, "textDocument/codeAction", params, 10000)
  local titles = {}
  for _, response in pairs(ok and responses or {}) do
    for _, action in ipairs(response.result or {}) do
      table.insert(titles, action.title)
    end
  end
  return titles
end

-- Choose the code action whose title starts with `wanted` from the menu at `line`, as
-- a user does (vim.ui.select is what vim.lsp.buf.code_action shows its menu with).
local function choose(wanted, line)
  vim.api.nvim_win_set_cursor(0, { line + 1, 4 })
  local offered = nil
  vim.ui.select = function(items, opts, on_choice)
    offered = {}
    for _, item in ipairs(items) do
      local title = opts.format_item(item)
      table.insert(offered, title)
      if title:sub(1, #wanted) == wanted then
        return on_choice(item)
      end
    end
    on_choice(nil)
  end
  vim.lsp.buf.code_action()
  if not vim.wait(10000, function() return offered ~= nil end, 20) then
    error("no code action menu for " .. wanted)
  end
end

local function run()
  vim.cmd("edit " .. vim.fn.fnameescape(spec.file))
  local buf = vim.api.nvim_get_current_buf()
  result.filetype = vim.bo[buf].filetype
  -- The server starts and answers `initialize`: then the client has its capabilities.
  local client = nil
  vim.wait(20000, function()
    client = livefix_client()
    return client ~= nil and client.server_capabilities ~= nil and client.server_capabilities.codeActionProvider ~= nil
  end, 20)
  if not client then
    error("the livefix client did not start")
  end
  result.titles = titles_at(buf, spec.line)
  result.root_dir = client.config.root_dir

  local count = #dap.requests
  choose("Apply ", spec.line)
  vim.wait(10000, function() return #dap.requests > count end, 20)
  count = #dap.requests
  choose("Reload ", spec.line)
  vim.wait(10000, function() return #dap.requests > count end, 20)

  -- nvim-dap calls its listeners with the session and the event's body.
  dap.listeners.after["event_livefix/applied"]["livefix"](dap.session(), spec.body)
  local shown = {}
  vim.wait(10000, function()
    shown = vim.diagnostic.get(buf)
    return #shown > 0
  end, 20)
  result.diagnostics = {}
  for _, diagnostic in ipairs(shown) do
    table.insert(result.diagnostics, { message = diagnostic.message, lnum = diagnostic.lnum, source = diagnostic.source })
  end

  choose("Persist running definition to source", spec.line)
  result.cleared = vim.wait(10000, function() return #vim.diagnostic.get(buf) == 0 end, 20)
  result.lines = vim.api.nvim_buf_get_lines(buf, 0, -1, false)
end

local ok, message = pcall(run)
if not ok then
  result.error = tostring(message)
end
-- What Neovim said meanwhile (errors, deprecation warnings), as `:messages` lists it.
if vim.api.nvim_exec2 then
  result.messages = vim.api.nvim_exec2("messages", { output = true }).output
else
  result.messages = vim.api.nvim_exec("messages", true)
end
save_and_quit()
