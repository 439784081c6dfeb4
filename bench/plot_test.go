package bench

import (
	"bytes"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"testing"
)

func TestPlot(t *testing.T) {
	var secs []Second
	for i := 1; i <= 60; i++ {
		s := Second{T: float64(i), EventsPerSec: 20_000 + 5_000*math.Sin(float64(i)/5), ProbeP99Ms: 5 * float64(i*i), LookupP99Ms: 0.8}
		if i%7 == 0 {
			s.ProbeP99Ms = math.NaN() // a second without probes: a gap, not a zero
		}
		secs = append(secs, s)
	}
	var buf bytes.Buffer
	if err := Plot(&buf, secs, []Mark{{T: 40, Label: "paced"}}); err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatalf("png.Decode: %v", err)
	}
	if b := img.Bounds(); b.Dx() != plotW || b.Dy() != plotH {
		t.Errorf("size %v, want %dx%d", b, plotW, plotH)
	}
	// The throughput series is drawn: some pixel has its colour.
	found := false
	for y := 0; y < plotH && !found; y++ {
		for x := 0; x < plotW; x++ {
			r, g, b, _ := img.At(x, y).RGBA()
			if uint8(r>>8) == colEvents.R && uint8(g>>8) == colEvents.G && uint8(b>>8) == colEvents.B {
				found = true
				break
			}
		}
	}
	if !found {
		t.Error("no pixel of the events series")
	}
	if dir := os.Getenv("SPINE_PLOT_OUT"); dir != "" {
		_ = os.WriteFile(filepath.Join(dir, "plot_test.png"), buf.Bytes(), 0o644)
	}
}

// Empty input still gives a valid image (axes only).
func TestPlotEmpty(t *testing.T) {
	var buf bytes.Buffer
	if err := Plot(&buf, nil, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := png.Decode(&buf); err != nil {
		t.Fatal(err)
	}
}
