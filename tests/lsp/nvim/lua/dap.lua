-- A stand-in for nvim-dap (not packaged by Debian), with the parts of its API the
-- documented configuration uses: `session()` and `listeners.after[event][key]`.
-- The session records each request instead of sending it to a debug adapter, and
-- answers it, as a debug adapter would, so that the configuration's callback runs.
local M = { requests = {} }

local function table_of_tables()
  return setmetatable({}, {
    __index = function(self, key)
      local value = {}
      rawset(self, key, value)
      return value
    end,
  })
end

M.listeners = { before = table_of_tables(), after = table_of_tables() }

local session = {}
function session:request(command, arguments, callback)
  table.insert(M.requests, { command = command, arguments = arguments })
  if callback then
    callback(nil, {})
  end
end

function M.session()
  return session
end

return M
