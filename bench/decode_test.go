package bench

import (
	"fmt"
	"strings"
	"syscall"
	"testing"

	"github.com/spinecdp/spine/ingest"
	"github.com/spinecdp/spine/ingest/msg"
	"github.com/spinecdp/spine/ingest/normalize"
	"github.com/spinecdp/spine/schemas/canon"
)

// decodeInputs holds one realistic message per channel: a few identifiers
// (email and phone where the channel has them, so normalization is
// measured), nested context and line items.
var decodeInputs = map[canon.Channel]string{
	canon.Web: `{"type":"track","messageId":"9f1c2b7e-4d2a-4a8e-9d7b-1c2e3f4a5b6c","timestamp":"2025-03-14T08:35:12.123Z",
"sentAt":"2025-03-14T08:35:12.500Z","anonymousId":"a-7f3c2e91-55aa","userId":"u-1001","event":"Order Completed",
"properties":{"order_id":"o-555","revenue":"129.90","currency":"EUR","coupon":"SPRING",
"products":[{"product_id":"sku-42","quantity":2,"price":64.95},{"product_id":"sku-7","quantity":1,"price":0}]},
"context":{"ip":"203.0.113.7","userAgent":"Mozilla/5.0 (Macintosh; Intel Mac OS X 14_3)","page":{"path":"/checkout","url":"https://shop.io/checkout"},
"traits":{"email":"Jane.Doe@shop.io"},"library":{"name":"analytics.js","version":"2.11.1"}},"integrations":{"All":true}}`,
	canon.Mobile: `{"type":"identify","messageId":"mob-7c1d","timestamp":"2025-03-14T10:00:00Z","anonymousId":"m-5150-aa",
"userId":"u-1001","traits":{"email":"jane.doe@shop.io","phone":"+1 650 253 0000","first_name":"Jane","plan":"gold"},
"context":{"device":{"id":"6F9619FF-8B86-D011-B42D-00C04FC964FF","model":"iPhone15,2"},"app":{"name":"Shop","version":"4.2.0"},
"os":{"name":"iOS","version":"18.3"}}}`,
	canon.IoT: `{"message_id":"iot-0003-77af","timestamp":"2025-03-14T11:05:00.250Z","event":"telemetry","device_serial":"THERM-9F2A-001",
"owner_user_id":"u-1001","firmware":"3.1.4","metrics":{"temp_c":21.5,"humidity":40,"battery":0.87,"rssi":-61}}`,
	canon.POS: `{"transaction_id":"pos-20250314-0001","timestamp":"2025-03-14T12:15:00-05:00","store_id":"store-042","type":"purchase",
"total":54.97,"currency":"USD","loyalty_id":"LOY-778899","card_fingerprint":"fp_3c9e1b77","email":"jane.doe@shop.io",
"phone":"650-253-0000","items":[{"sku":"sku-42","qty":2,"unit_price":19.99},{"sku":"sku-7","qty":1,"unit_price":"14.99"}]}`,
	canon.Support: `{"event_id":"sup-0003","timestamp":"2025-03-16T09:10:00Z","ticket_id":"T-5002","event":"refund_issued",
"crm_contact_id":"CRM-00042","email":"jane.doe@shop.io","refund_amount":"19.99","currency":"usd","medium":"voice","agent":"a-12"}`,
	canon.CIAM: `{"event_id":"ciam-0001","timestamp":"2025-03-14T08:39:00Z","event":"registered","user_id":"u-1001",
"anonymous_id":"a-7f3c2e91-55aa","device_id":"6F9619FF-8B86-D011-B42D-00C04FC964FF","email":"Jane.Doe@shop.io","email_verified":true,
"phone":"+1 650 253 0000","phone_verified":false,"traits":{"first_name":"Jane","last_name":"Doe"},
"consent":{"email_marketing":true,"analytics":true},"organization":{"id":"acct-77","name":"Acme"}}`,
}

// BenchmarkDecode measures each channel's decoder on one realistic message,
// from bytes to a validated canonical event.
func BenchmarkDecode(b *testing.B) {
	decs := ingest.Decoders(normalize.Default(), msg.DefaultLimits())
	for _, ch := range canon.Channels {
		raw := []byte(decodeInputs[ch])
		dec := decs[ch]
		if _, err := dec(raw); err != nil {
			b.Fatalf("%s: %v", ch, err)
		}
		b.Run(string(ch), func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(raw)))
			cpu0 := processCPU()
			for b.Loop() {
				if _, err := dec(raw); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(processCPU()-cpu0)/float64(b.N), "cpu-ns/op")
		})
	}
}

// BenchmarkDecodeNewPhone decodes the POS message with a phone number not
// seen before on every iteration, so the normalizer's phone memo never
// hits: the cost of a customer's first message (BenchmarkDecode repeats
// one message, so its phone comes from the memo).
func BenchmarkDecodeNewPhone(b *testing.B) {
	dec := ingest.Decoders(normalize.Default(), msg.DefaultLimits())[canon.POS]
	tmpl := strings.Replace(decodeInputs[canon.POS], `"650-253-0000"`, `"650-2%02d-%04d"`, 1)
	msgs := make([][]byte, 0, 1<<16)
	for i := range cap(msgs) {
		msgs = append(msgs, fmt.Appendf(nil, tmpl, 10+i/10000%90, i%10000))
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if _, err := dec(msgs[i%len(msgs)]); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// processCPU is the CPU time the process has used, in ns: user and system,
// every thread, so the garbage collector's share is in. Unlike ns/op it
// does not grow when other processes take the cores, so decoders can be
// compared on a busy machine.
func processCPU() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}
