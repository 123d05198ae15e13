-- pubkit's pandoc session (pubkit/pandoc.py): one pandoc that serves a worker's
-- conversions one after another, so that each pays no process start (a fresh pandoc
-- costs more in page faults than a lesson's conversion does).
--
-- A request is one line of JSON, {"op": ..., "size": N, ...}, then N bytes of input.
-- The answer is "ok N" or "error N" on a line, then N bytes: the output, or why not.
--   parse  Markdown (in the reader given) -> pandoc's JSON; the reader reads no file.
--   html   JSON -> an HTML5 fragment.
--   citeproc  JSON -> JSON, its citations rendered from the "bibliography" files in
--          the "csl" style and "lang", linked to a list of references at its end.
--   epub   JSON -> an EPUB 3, with the stylesheet, fonts and cover given, files
--          resolved from "folder", and "epoch" as its time (SOURCE_DATE_EPOCH).

local json = pandoc.json
local system = pandoc.system

local epub_template = nil

local function html(doc)
  return pandoc.write(doc, 'html5', {wrap_text = 'wrap-none', highlight_method = 'none'})
    .. '\n'
end

local function epub(doc, request)
  epub_template = epub_template
    or pandoc.template.compile(pandoc.template.default('epub3'))
  local options = pandoc.WriterOptions {
    template = epub_template,
    variables = {css = {request.css}, ['epub-cover-image'] = request.cover},
    epub_fonts = request.fonts,
    epub_title_page = false,
    split_level = 1,
    -- pubkit writes the contents lists (epubparts.contents): pandoc's, three levels
    -- deep, took half of a lesson's EPUB.
    toc_depth = 1,
    wrap_text = 'wrap-none',
    highlight_method = 'none',
  }
  local function write ()
    return system.with_working_directory(request.folder, function ()
      return pandoc.write(doc, 'epub3', options)
    end)
  end
  if not request.epoch then
    return write()
  end
  local environment = system.environment()
  environment.SOURCE_DATE_EPOCH = request.epoch
  return system.with_environment(environment, write)
end

local function citeproc(doc, request)
  doc.meta.bibliography = request.bibliography
  doc.meta.csl = request.csl
  doc.meta.lang = request.lang
  doc.meta['link-citations'] = true
  return pandoc.write(pandoc.utils.citeproc(doc), 'json') .. '\n'
end

local function convert(request, input)
  if request.op == 'parse' then
    return pandoc.write(pandoc.read(input, request.reader, {}, {}), 'json') .. '\n'
  end
  local doc = pandoc.read(input, 'json')
  if request.op == 'html' then
    return html(doc)
  elseif request.op == 'citeproc' then
    return citeproc(doc, request)
  elseif request.op == 'epub' then
    return epub(doc, request)
  end
  error('unknown request ' .. tostring(request.op))
end

io.stdout:setvbuf('full')
while true do
  local line = io.stdin:read('l')
  if line == nil then break end  -- pubkit is done with this session
  local request = json.decode(line, false)
  local input = request.size > 0 and io.stdin:read(request.size) or ''
  local ok, output = pcall(convert, request, input)
  if not ok then
    output = tostring(output)
  end
  io.stdout:write(ok and 'ok ' or 'error ', #output, '\n', output)
  io.stdout:flush()
end
