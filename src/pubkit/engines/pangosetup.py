"""Set up WeasyPrint's Pango layouts from what layouts of the same font already made.

WeasyPrint 70 gives each text layout it makes (every try at every line of every paragraph,
and each line again to draw it: tens of thousands a lesson) a Pango context, font
description and font metrics of its own, built from its style: a twentieth of a lesson's
time. Here layouts of the same font, direction and language share them: a context is not
changed once set up (a layout keeps a reference to it, as layouts of one widget do), Pango
copies a description into each layout, and the metrics are numbers. Everything else a
layout is given (its text, spacing, features, tabs) is set per layout, as WeasyPrint does.

A line is also drawn from the layout it was laid out in. WeasyPrint drops each line's
layout once the line is measured and makes and shapes it again to draw it (a twentieth of
a lesson's time). The layout of a line of one piece, with no justification to add, is
what drawing it would make again, so it is kept with its line until the line is drawn
(once: a second drawing makes its own). The bytes of every PDF are the same.
"""

from __future__ import annotations

from typing import Any

from weasyprint.text import line_break
from weasyprint.text.constants import LST_TO_ISO, PANGO_DIRECTION
from weasyprint.text.ffi import FROM_UNITS, ffi, gobject, pango, unicode_to_char_p
from weasyprint.text.fonts import font_features, get_font_description

#: What layouts of one font share, by :func:`_key`. The key holds the font configuration,
#: so that its font map is not freed (nor its address taken again) while a context of it
#: is kept here.
_SHARED: dict[tuple[Any, ...], tuple[Any, Any, Any, dict[str, Any]]] = {}
#: WeasyPrint's own ``Layout`` methods, which :func:`setup`, :func:`deactivate` and
#: :func:`reactivate` stand in for.
weasyprint_setup = line_break.Layout.setup
weasyprint_deactivate = line_break.Layout.deactivate
weasyprint_reactivate = line_break.Layout.reactivate
#: What a layout keeps of itself once drawn (:func:`reactivate`): nothing.
_DRAWN = "drawn"
_METRICS = ("ascent", "underline_position", "strikethrough_position")
_THICKNESS = ("underline_thickness", "strikethrough_thickness")


def _key(style: Any) -> tuple[Any, ...]:
    return (
        style.font_config,
        style["direction"],
        style["font_language_override"],
        style["lang"],
        tuple(style["font_family"]),
        style["font_style"],
        style["font_stretch"],
        style["font_weight"],
        style["font_size"],
        style["font_variant_caps"],
        repr(style["font_variation_settings"]),
        style["text_decoration_line"] != "none",
    )


def _shared(style: Any) -> tuple[Any, Any, Any, dict[str, Any]]:
    """A Pango context, language, font description and metrics, made as WeasyPrint 70's
    ``Layout.setup`` makes them for ``style``."""
    context = ffi.gc(
        pango.pango_font_map_create_context(style.font_config.font_map), gobject.g_object_unref
    )
    pango.pango_context_set_round_glyph_positions(context, False)
    pango.pango_context_set_base_dir(context, PANGO_DIRECTION[style["direction"]])
    override = style["font_language_override"]
    if override != "normal":
        lang_p, lang = unicode_to_char_p(LST_TO_ISO.get(override.lower(), override))
    elif style["lang"]:
        lang_p, lang = unicode_to_char_p(style["lang"])
    else:
        lang = None
        language = pango.pango_language_get_default()
    if lang:
        language = pango.pango_language_from_string(lang_p)
        pango.pango_context_set_language(context, language)
    description = get_font_description(style)
    metrics: dict[str, Any] = dict.fromkeys(_METRICS)
    if style["text_decoration_line"] != "none":
        found = ffi.gc(
            pango.pango_context_get_metrics(context, description, language),
            pango.pango_font_metrics_unref,
        )
        for name in (*_METRICS, *_THICKNESS):
            metrics[name] = FROM_UNITS * getattr(pango, f"pango_font_metrics_get_{name}")(found)
    return context, language, description, metrics


def setup(self: Any, style: Any) -> None:
    """WeasyPrint 70's ``Layout.setup``, with the context, language, description and
    metrics of the layouts of the same font (:func:`_shared`)."""
    self.style = style
    self.first_line_direction = 0
    key = _key(style)
    if (shared := _SHARED.get(key)) is None:
        shared = _SHARED[key] = _shared(style)
    context, self.language, description, metrics = shared
    self.layout = ffi.gc(pango.pango_layout_new(context), gobject.g_object_unref)
    pango.pango_layout_set_auto_dir(self.layout, False)
    pango.pango_layout_set_font_description(self.layout, description)
    self.__dict__.update(metrics)
    features = font_features(
        style["font_kerning"],
        style["font_variant_ligatures"],
        style["font_variant_position"],
        style["font_variant_caps"],
        style["font_variant_numeric"],
        style["font_variant_alternates"],
        style["font_variant_east_asian"],
        style["font_feature_settings"],
    )
    if features:
        joined = ",".join(f"{key} {value}" for key, value in features.items()).encode()
        attr = style.font_config.font_features.setdefault(
            joined, pango.pango_attr_font_features_new(joined)
        )
        attr_list = pango.pango_attr_list_new()
        pango.pango_attr_list_insert(attr_list, attr)
        pango.pango_layout_set_attributes(self.layout, attr_list)


def deactivate(self: Any) -> None:
    """WeasyPrint's ``Layout.deactivate``, keeping the layout of a line to be drawn as it
    was laid out: one line, never drawn, no justification to add (which respaces it)."""
    if getattr(self, "laid_out", None) is not _DRAWN:
        one_line = pango.pango_layout_get_line_readonly(self.layout, 1) == ffi.NULL
        keep = one_line and not self.justification_spacing
        self.laid_out = (self.layout, self.language, self.style) if keep else None
    weasyprint_deactivate(self)


def reactivate(self: Any, style: Any) -> None:
    """WeasyPrint's ``Layout.reactivate`` (to draw the line), from the layout kept of it
    if it was laid out in ``style`` (:func:`deactivate`); the first drawing only."""
    kept, self.laid_out = getattr(self, "laid_out", None), _DRAWN
    if not isinstance(kept, tuple) or kept[2] is not style:
        weasyprint_reactivate(self, style)
        return
    self.layout, self.language, self.style = kept
    self.first_line_direction = 0


def install() -> None:
    """Set WeasyPrint's layouts up with :func:`setup`, and draw lines from their own
    layouts (:func:`deactivate`, :func:`reactivate`) (idempotent)."""
    line_break.Layout.setup = setup
    line_break.Layout.deactivate = deactivate
    line_break.Layout.reactivate = reactivate
