"""Look and feel: the app icon, the Fusion style with a light or dark palette
(following the system unless the user chose), and a small style sheet for
consistent spacing."""

from __future__ import annotations

from PySide6.QtCore import QByteArray, Qt
from PySide6.QtGui import QColor, QIcon, QImage, QPainter, QPalette, QPixmap
from PySide6.QtSvg import QSvgRenderer
from PySide6.QtWidgets import QApplication

from app.bundled import resource

ICON = resource("hearth.svg")
# The sizes trays, task bars and the freedesktop icon theme ask for.
ICON_SIZES = (16, 22, 24, 32, 48, 64, 128, 256)


def render_icon(size: int) -> QImage | None:
    """The app icon drawn at `size` pixels square; None when the SVG is missing
    or damaged. A QImage, so that it works without a QGuiApplication (desktop
    entry installs from the command line)."""
    # From the bytes rather than a file name, so that a zipped or frozen
    # package works too.
    svg = QSvgRenderer(QByteArray(ICON.read_bytes())) if ICON.is_file() else None
    if svg is None or not svg.isValid():
        return None
    image = QImage(size, size, QImage.Format.Format_ARGB32_Premultiplied)
    image.fill(Qt.GlobalColor.transparent)
    painter = QPainter(image)
    svg.render(painter)
    painter.end()
    return image


def app_icon() -> QIcon:
    images = [image for size in ICON_SIZES if (image := render_icon(size)) is not None]
    if images:
        icon = QIcon()
        for image in images:
            icon.addPixmap(QPixmap.fromImage(image))
        return icon
    # A damaged install without the icon: a plain drawn mark still identifies
    # the window and the tray entry.
    pix = QPixmap(64, 64)
    pix.fill(Qt.GlobalColor.transparent)
    painter = QPainter(pix)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    painter.setBrush(QColor("#f5a623"))
    painter.setPen(Qt.PenStyle.NoPen)
    painter.drawEllipse(8, 8, 48, 48)
    painter.end()
    return QIcon(pix)


def system_prefers_dark(app: QApplication) -> bool:
    scheme = app.styleHints().colorScheme()
    if scheme == Qt.ColorScheme.Dark:
        return True
    if scheme == Qt.ColorScheme.Light:
        return False
    return app.palette().color(QPalette.ColorRole.Window).lightness() < 128


def _palette(dark: bool) -> QPalette:
    p = QPalette()
    R, G = QPalette.ColorRole, QPalette.ColorGroup
    if dark:
        colors = {
            R.Window: "#1f2024", R.WindowText: "#e6e6e9", R.Base: "#18191c",
            R.AlternateBase: "#232428", R.Text: "#e6e6e9", R.Button: "#2a2c31",
            R.ButtonText: "#e6e6e9", R.Highlight: "#d9822b", R.HighlightedText: "#ffffff",
            R.ToolTipBase: "#2a2c31", R.ToolTipText: "#e6e6e9", R.Link: "#7fb2ff",
            R.PlaceholderText: "#8a8f98", R.Mid: "#3a3d44", R.Dark: "#111214",
            R.Light: "#3a3d44", R.Midlight: "#33363c", R.Shadow: "#000000",
        }
    else:
        colors = {
            R.Window: "#f6f6f7", R.WindowText: "#1d1e22", R.Base: "#ffffff",
            R.AlternateBase: "#f3f4f6", R.Text: "#1d1e22", R.Button: "#eceef1",
            R.ButtonText: "#1d1e22", R.Highlight: "#d9822b", R.HighlightedText: "#ffffff",
            R.ToolTipBase: "#ffffff", R.ToolTipText: "#1d1e22", R.Link: "#2a6ad3",
            R.PlaceholderText: "#8a8f98", R.Mid: "#c9ccd2", R.Dark: "#a0a4ab",
            R.Light: "#ffffff", R.Midlight: "#e4e6ea", R.Shadow: "#7a7d83",
        }
    for role, color in colors.items():
        p.setColor(role, QColor(color))
    for role in (R.Text, R.WindowText, R.ButtonText):
        p.setColor(G.Disabled, role, QColor("#7d818a"))
    return p


STYLE = """
QFrame#answerMessage, QFrame#userMessage { border-radius: 10px; }
QFrame#userMessage { background: palette(alternate-base); }
QLabel#placeholder { color: palette(placeholder-text); font-size: 11pt; }
QLabel#errorText { color: #d64541; }
QLabel#fallbackNote { color: palette(placeholder-text); font-style: italic; }
QLabel#keyringNote { color: #d64541; }
QPushButton#badge { color: palette(placeholder-text); text-align: left; padding: 2px 4px;
                    border: none; }
QPushButton#badge:hover { text-decoration: underline; }
QLabel#offline { color: #d9822b; font-weight: bold; }
QFrame#quickAsk { border: 1px solid palette(mid); border-radius: 12px;
                  background: palette(window); }
"""


def apply_theme(app: QApplication, choice: str) -> bool:
    """Apply "system", "light" or "dark"; returns True when dark."""
    app.setStyle("Fusion")
    if choice == "system":
        app.setPalette(app.style().standardPalette())
        dark = system_prefers_dark(app)
    else:
        dark = choice == "dark"
    app.setPalette(_palette(dark))
    app.setStyleSheet(STYLE)
    return dark
