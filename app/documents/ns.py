"""XML namespaces and the Clark-notation tags ("{uri}local") the reader compares against.

Strict OOXML files use other namespace URIs for the same vocabulary; `package.py` rewrites them to the
transitional ones below before parsing, so the reader only knows one set.
"""

from __future__ import annotations

W_NS = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"
R_NS = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
WP_NS = "http://schemas.openxmlformats.org/drawingml/2006/wordprocessingDrawing"
A_NS = "http://schemas.openxmlformats.org/drawingml/2006/main"
PIC_NS = "http://schemas.openxmlformats.org/drawingml/2006/picture"
M_NS = "http://schemas.openxmlformats.org/officeDocument/2006/math"
MC_NS = "http://schemas.openxmlformats.org/markup-compatibility/2006"
V_NS = "urn:schemas-microsoft-com:vml"
O_NS = "urn:schemas-microsoft-com:office:office"
W14_NS = "http://schemas.microsoft.com/office/word/2010/wordml"
DGM_NS = "http://schemas.openxmlformats.org/drawingml/2006/diagram"
PKG_REL_NS = "http://schemas.openxmlformats.org/package/2006/relationships"

# Strict OOXML (ISO 29500 strict) URI -> transitional URI.
STRICT_TO_TRANSITIONAL = [
    (b"http://purl.oclc.org/ooxml/wordprocessingml/main", W_NS.encode()),
    (b"http://purl.oclc.org/ooxml/officeDocument/relationships", R_NS.encode()),
    (b"http://purl.oclc.org/ooxml/drawingml/wordprocessingDrawing", WP_NS.encode()),
    (b"http://purl.oclc.org/ooxml/drawingml/main", A_NS.encode()),
    (b"http://purl.oclc.org/ooxml/drawingml/picture", PIC_NS.encode()),
    (b"http://purl.oclc.org/ooxml/officeDocument/math", M_NS.encode()),
]


def w(local: str) -> str:
    return f"{{{W_NS}}}{local}"


def m(local: str) -> str:
    return f"{{{M_NS}}}{local}"


W_VAL = w("val")
W_ID = w("id")
W_TYPE = w("type")
R_ID = f"{{{R_NS}}}id"
R_EMBED = f"{{{R_NS}}}embed"
R_LINK = f"{{{R_NS}}}link"

# block level
W_BODY = w("body")
W_P = w("p")
W_TBL = w("tbl")
W_SDT = w("sdt")
W_SDT_CONTENT = w("sdtContent")
W_SDT_PR = w("sdtPr")
W_DOC_PART_GALLERY = f"{w('docPartObj')}/{w('docPartGallery')}"
W_CUSTOM_XML = w("customXml")
W_SMART_TAG = w("smartTag")
W_INS = w("ins")
W_DEL = w("del")
W_MOVE_TO = w("moveTo")
W_MOVE_FROM = w("moveFrom")
W_ALT_CHUNK = w("altChunk")
W_SECT_PR = w("sectPr")
W_BOOKMARK_START = w("bookmarkStart")
W_NAME = w("name")
W_TXBX_CONTENT = w("txbxContent")

# paragraph
W_PPR = w("pPr")
W_PSTYLE = w("pStyle")
W_NUMPR = w("numPr")
W_NUM_ID = w("numId")
W_ILVL = w("ilvl")
W_OUTLINE_LVL = w("outlineLvl")
W_IND = w("ind")
W_FRAME_PR = w("framePr")
W_DROP_CAP = w("dropCap")
W_LEFT = w("left")
W_START_IND = w("start")
W_RPR = w("rPr")

# inline
W_R = w("r")
W_T = w("t")
W_TAB = w("tab")
W_PTAB = w("ptab")
W_BR = w("br")
W_CR = w("cr")
W_SYM = w("sym")
W_CHAR = w("char")
W_FONT = w("font")
W_NO_BREAK_HYPHEN = w("noBreakHyphen")
W_SOFT_HYPHEN = w("softHyphen")
W_RFONTS = w("rFonts")
W_ASCII = w("ascii")
W_DRAWING = w("drawing")
W_PICT = w("pict")
W_OBJECT = w("object")
W_HYPERLINK = w("hyperlink")
W_ANCHOR = w("anchor")
W_FLD_SIMPLE = w("fldSimple")
W_INSTR = w("instr")
W_FLD_CHAR = w("fldChar")
W_FLD_CHAR_TYPE = w("fldCharType")
W_INSTR_TEXT = w("instrText")
W_FF_CHECKBOX = f"{w('ffData')}/{w('checkBox')}"
W_CHECKED = w("checked")
W_DEFAULT_STATE = w("default")
W_FOOTNOTE_REFERENCE = w("footnoteReference")
W_ENDNOTE_REFERENCE = w("endnoteReference")
W_COMMENT_REFERENCE = w("commentReference")
W_DIR = w("dir")
W_BDO = w("bdo")
W_RUBY = w("ruby")
W_RUBY_BASE = w("rubyBase")
W_RUBY_TEXT = w("rt")
W_RSTYLE = w("rStyle")
W_VANISH = w("vanish")
W_CHECKBOX14 = f"{{{W14_NS}}}checkbox"
W_CHECKED14 = f"{{{W14_NS}}}checked"

# run properties that make marks
W_B = w("b")
W_I = w("i")
W_U = w("u")
W_STRIKE = w("strike")
W_DSTRIKE = w("dstrike")
W_VERT_ALIGN = w("vertAlign")
W_SMALL_CAPS = w("smallCaps")

# tables
W_TR = w("tr")
W_TC = w("tc")
W_TBL_PR = w("tblPr")
W_TBL_LOOK = w("tblLook")
W_TR_PR = w("trPr")
W_TC_PR = w("tcPr")
W_GRID_SPAN = w("gridSpan")
W_GRID_BEFORE = w("gridBefore")
W_V_MERGE = w("vMerge")
W_TBL_HEADER = w("tblHeader")
W_FIRST_ROW = w("firstRow")

# notes, styles, numbering
W_FOOTNOTE = w("footnote")
W_ENDNOTE = w("endnote")
W_COMMENT = w("comment")
W_STYLE = w("style")
W_STYLE_ID = w("styleId")
W_BASED_ON = w("basedOn")
W_DEFAULT = w("default")
W_ABSTRACT_NUM = w("abstractNum")
W_ABSTRACT_NUM_ID = w("abstractNumId")
W_NUM = w("num")
W_LVL = w("lvl")
W_START = w("start")
W_NUM_FMT = w("numFmt")
W_LVL_OVERRIDE = w("lvlOverride")
W_START_OVERRIDE = w("startOverride")
W_NUM_STYLE_LINK = w("numStyleLink")

# drawings
WP_INLINE = f"{{{WP_NS}}}inline"
WP_ANCHOR = f"{{{WP_NS}}}anchor"
WP_EXTENT = f"{{{WP_NS}}}extent"
WP_DOC_PR = f"{{{WP_NS}}}docPr"
A_BLIP = f"{{{A_NS}}}blip"
A_GRAPHIC_DATA = f"{{{A_NS}}}graphicData"
A_T = f"{{{A_NS}}}t"
DGM_REL_IDS = f"{{{DGM_NS}}}relIds"
R_DM = f"{{{R_NS}}}dm"
V_IMAGEDATA = f"{{{V_NS}}}imagedata"
V_SHAPE = f"{{{V_NS}}}shape"
O_TITLE = f"{{{O_NS}}}title"

# markup compatibility
MC_ALTERNATE_CONTENT = f"{{{MC_NS}}}AlternateContent"
MC_CHOICE = f"{{{MC_NS}}}Choice"
MC_FALLBACK = f"{{{MC_NS}}}Fallback"

# math
M_OMATH = m("oMath")
M_OMATH_PARA = m("oMathPara")
