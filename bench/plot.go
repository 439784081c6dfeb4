package bench

import (
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
	"math"
	"strings"
)

// Second is one second of a bench run, the unit of the timeline plot.
// Latencies are NaN for a second in which nothing was measured.
type Second struct {
	T            float64 // seconds since the run started, end of the interval
	EventsPerSec float64 // events the engine applied in the second
	ProbeP99Ms   float64 // produce-to-lookup-visible p99 of probes seen in the second
	LookupP99Ms  float64 // HTTP lookup p99 of requests finished in the second
}

// Mark is a labelled instant on the time axis (a phase boundary).
type Mark struct {
	T     float64
	Label string
}

// Plot geometry, in pixels.
const (
	plotW, plotH         = 960, 640
	padLeft, padRight    = 90, 20
	padTop, panelGap     = 40, 70
	padBottom            = 60
	fontScale            = 2
	glyphW, glyphH       = 3, 5
	minLatencyMs         = 0.1
	maxLatencyDecadesCap = 7 // 0.1 ms .. 1e6 ms
)

var (
	colBG     = color.RGBA{255, 255, 255, 255}
	colAxis   = color.RGBA{40, 40, 40, 255}
	colGrid   = color.RGBA{225, 225, 225, 255}
	colMark   = color.RGBA{160, 160, 160, 255}
	colEvents = color.RGBA{31, 90, 180, 255}
	colProbe  = color.RGBA{200, 40, 40, 255}
	colLookup = color.RGBA{30, 150, 60, 255}
)

// Plot draws the timeline as a PNG: applied events per second on top
// (linear), and the per-second p99 of produce-to-lookup-visible latency
// and of HTTP lookups below (log scale, milliseconds). Marks draw as grey
// vertical lines across both panels. It uses only the standard library:
// the labels are a 3×5 pixel font.
func Plot(w io.Writer, secs []Second, marks []Mark) error {
	img := image.NewRGBA(image.Rect(0, 0, plotW, plotH))
	fill(img, img.Bounds(), colBG)

	tMax := 1.0
	evMax := 1.0
	latMax := 1.0
	for _, s := range secs {
		tMax = math.Max(tMax, s.T)
		evMax = math.Max(evMax, s.EventsPerSec)
		for _, v := range []float64{s.ProbeP99Ms, s.LookupP99Ms} {
			if !math.IsNaN(v) {
				latMax = math.Max(latMax, v)
			}
		}
	}
	panelH := (plotH - padTop - panelGap - padBottom) / 2
	top := image.Rect(padLeft, padTop, plotW-padRight, padTop+panelH)
	bot := image.Rect(padLeft, padTop+panelH+panelGap, plotW-padRight, padTop+2*panelH+panelGap)

	xOf := func(r image.Rectangle, t float64) int { return r.Min.X + int(t/tMax*float64(r.Dx()-1)) }
	xStep := niceStep(tMax, 10)

	// Top panel: events/s.
	evStep := niceStep(evMax, 5)
	evTop := math.Ceil(evMax/evStep) * evStep
	yEv := func(v float64) int { return top.Max.Y - 1 - int(v/evTop*float64(top.Dy()-1)) }
	for v := 0.0; v <= evTop+evStep/2; v += evStep {
		y := yEv(v)
		hline(img, top.Min.X, top.Max.X, y, colGrid)
		label := humanCount(v)
		text(img, top.Min.X-6-textWidth(label), y-glyphH*fontScale/2, label, colAxis)
	}
	// Bottom panel: latency, log10 of milliseconds.
	decades := math.Ceil(math.Log10(latMax / minLatencyMs))
	decades = math.Max(1, math.Min(decades, maxLatencyDecadesCap))
	yLat := func(ms float64) int {
		ms = math.Max(ms, minLatencyMs)
		f := math.Log10(ms/minLatencyMs) / decades
		return bot.Max.Y - 1 - int(math.Min(f, 1)*float64(bot.Dy()-1))
	}
	for d := 0.0; d <= decades; d++ {
		ms := minLatencyMs * math.Pow(10, d)
		y := yLat(ms)
		hline(img, bot.Min.X, bot.Max.X, y, colGrid)
		label := humanMs(ms)
		text(img, bot.Min.X-6-textWidth(label), y-glyphH*fontScale/2, label, colAxis)
	}
	for _, r := range []image.Rectangle{top, bot} {
		for t := 0.0; t <= tMax+xStep/2; t += xStep {
			x := xOf(r, math.Min(t, tMax))
			vline(img, x, r.Min.Y, r.Max.Y, colGrid)
			vline(img, x, r.Max.Y, r.Max.Y+5, colAxis)
			l := fmt.Sprintf("%g", t)
			text(img, x-textWidth(l)/2, r.Max.Y+9, l, colAxis)
		}
	}
	for _, m := range marks {
		for _, r := range []image.Rectangle{top, bot} {
			x := xOf(r, m.T)
			for y := r.Min.Y; y < r.Max.Y; y += 6 {
				vline(img, x, y, min(y+3, r.Max.Y), colMark)
			}
		}
		text(img, xOf(top, m.T)+4, top.Min.Y+4, strings.ToUpper(m.Label), colMark)
	}
	for _, r := range []image.Rectangle{top, bot} {
		hline(img, r.Min.X, r.Max.X, r.Max.Y, colAxis)
		vline(img, r.Min.X, r.Min.Y, r.Max.Y, colAxis)
	}

	series := func(r image.Rectangle, c color.RGBA, val func(Second) float64, y func(float64) int) {
		px, py, have := 0, 0, false
		for _, s := range secs {
			v := val(s)
			if math.IsNaN(v) {
				have = false
				continue
			}
			x, yy := xOf(r, s.T), y(v)
			if have {
				line(img, px, py, x, yy, c)
			} else {
				dot(img, x, yy, c)
			}
			px, py, have = x, yy, true
		}
	}
	series(top, colEvents, func(s Second) float64 { return s.EventsPerSec }, yEv)
	series(bot, colProbe, func(s Second) float64 { return s.ProbeP99Ms }, yLat)
	series(bot, colLookup, func(s Second) float64 { return s.LookupP99Ms }, yLat)

	text(img, top.Min.X, top.Min.Y-22, "EVENTS APPLIED PER SECOND", colEvents)
	legend := []struct {
		label string
		c     color.RGBA
	}{{"P99 PRODUCE TO LOOKUP-VISIBLE MS", colProbe}, {"P99 HTTP LOOKUP MS", colLookup}}
	x := bot.Min.X
	for _, l := range legend {
		fill(img, image.Rect(x, bot.Min.Y-20, x+12, bot.Min.Y-10), l.c)
		text(img, x+18, bot.Min.Y-20, l.label, l.c)
		x += 18 + textWidth(l.label) + 30
	}
	l := "SECONDS SINCE START"
	text(img, (bot.Min.X+bot.Max.X-textWidth(l))/2, bot.Max.Y+30, l, colAxis)
	return png.Encode(w, img)
}

// niceStep returns a 1, 2 or 5 × 10^k step giving about n steps up to max.
func niceStep(max float64, n int) float64 {
	raw := max / float64(n)
	p := math.Pow(10, math.Floor(math.Log10(raw)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= raw {
			return m * p
		}
	}
	return 10 * p
}

func humanCount(v float64) string {
	switch {
	case v >= 1e6:
		return fmt.Sprintf("%gM", v/1e6)
	case v >= 1e3:
		return fmt.Sprintf("%gK", v/1e3)
	}
	return fmt.Sprintf("%g", v)
}

func humanMs(ms float64) string {
	if ms >= 1000 {
		return fmt.Sprintf("%gS", ms/1000)
	}
	return fmt.Sprintf("%gMS", ms)
}

func fill(img *image.RGBA, r image.Rectangle, c color.RGBA) {
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			img.SetRGBA(x, y, c)
		}
	}
}

func hline(img *image.RGBA, x0, x1, y int, c color.RGBA) {
	for x := x0; x <= x1; x++ {
		img.SetRGBA(x, y, c)
	}
}

func vline(img *image.RGBA, x, y0, y1 int, c color.RGBA) {
	for y := y0; y <= y1; y++ {
		img.SetRGBA(x, y, c)
	}
}

// dot draws a 2×2 point, the pen of line.
func dot(img *image.RGBA, x, y int, c color.RGBA) {
	fill(img, image.Rect(x, y, x+2, y+2), c)
}

// line draws from (x0,y0) to (x1,y1) with Bresenham's algorithm.
func line(img *image.RGBA, x0, y0, x1, y1 int, c color.RGBA) {
	dx, dy := abs(x1-x0), -abs(y1-y0)
	sx, sy := 1, 1
	if x0 > x1 {
		sx = -1
	}
	if y0 > y1 {
		sy = -1
	}
	e := dx + dy
	for {
		dot(img, x0, y0, c)
		if x0 == x1 && y0 == y1 {
			return
		}
		if e2 := 2 * e; e2 >= dy {
			e += dy
			x0 += sx
		} else {
			e += dx
			y0 += sy
		}
	}
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}

// font is a 3×5 pixel font: five rows of three bits per glyph.
var font = map[rune]string{
	'0': "111101101101111", '1': "010110010010111", '2': "111001111100111", '3': "111001111001111",
	'4': "101101111001001", '5': "111100111001111", '6': "111100111101111", '7': "111001001001001",
	'8': "111101111101111", '9': "111101111001111",
	'A': "010101111101101", 'B': "110101110101110", 'C': "011100100100011", 'D': "110101101101110",
	'E': "111100110100111", 'F': "111100110100100", 'G': "011100101101011", 'H': "101101111101101",
	'I': "111010010010111", 'J': "001001001101010", 'K': "101101110101101", 'L': "100100100100111",
	'M': "101111111101101", 'N': "110101101101101", 'O': "010101101101010", 'P': "110101110100100",
	'Q': "010101101110011", 'R': "110101110101101", 'S': "011100010001110", 'T': "111010010010010",
	'U': "101101101101111", 'V': "101101101101010", 'W': "101101111111101", 'X': "101101010101101",
	'Y': "101101010010010", 'Z': "111001010100111",
	'.': "000000000000010", '/': "001001010100100", '-': "000000111000000", ':': "000010000010000",
	'%': "101001010100101", '(': "010100100100010", ')': "010001001001010", ' ': "000000000000000",
}

func textWidth(s string) int { return len(s) * (glyphW + 1) * fontScale }

// text writes s (upper case, digits, . / - : % ( )) with its top left at x, y.
func text(img *image.RGBA, x, y int, s string, c color.RGBA) {
	for _, r := range strings.ToUpper(s) {
		g, ok := font[r]
		if !ok {
			g = font[' ']
		}
		for row := range glyphH {
			for col := range glyphW {
				if g[row*glyphW+col] == '1' {
					fill(img, image.Rect(x+col*fontScale, y+row*fontScale, x+(col+1)*fontScale, y+(row+1)*fontScale), c)
				}
			}
		}
		x += (glyphW + 1) * fontScale
	}
}
