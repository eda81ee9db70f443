package signature_test

import (
	"testing"
	"time"

	"github.com/blametrail/terraform-provider-blametrail/relay/signature"
)

func benchBody() []byte {
	body := make([]byte, 1024)
	for i := range body {
		body[i] = byte('a' + i%26)
	}
	return body
}

func BenchmarkAppendSignature(b *testing.B) {
	s, err := signature.NewSigner(swSecret)
	if err != nil {
		b.Fatal(err)
	}
	body := benchBody()
	dst := make([]byte, 0, signature.SignatureLen)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		dst = s.AppendSignature(dst[:0], "dlv_01HZXK3M9Q7T2V5B8N4C6D1F0G", 1700000000, body)
	}
}

func BenchmarkSignConvenience(b *testing.B) {
	body := benchBody()
	ts := time.Unix(1700000000, 0)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := signature.Sign(swSecret, "dlv_01HZXK3M9Q7T2V5B8N4C6D1F0G", ts, body); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerify(b *testing.B) {
	body := benchBody()
	now := time.Unix(1700000000, 0)
	sig, err := signature.Sign(swSecret, "dlv_1", now, body)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if err := signature.Verify(swSecret, "dlv_1", "1700000000", sig, body, now, 0); err != nil {
			b.Fatal(err)
		}
	}
}

func TestAppendSignatureDoesNotAllocate(t *testing.T) {
	s, err := signature.NewSigner(swSecret)
	if err != nil {
		t.Fatal(err)
	}
	body := benchBody()
	dst := make([]byte, 0, signature.SignatureLen)
	allocs := testing.AllocsPerRun(100, func() {
		dst = s.AppendSignature(dst[:0], "dlv_01HZXK3M9Q7T2V5B8N4C6D1F0G", 1700000000, body)
	})
	if allocs != 0 {
		t.Errorf("AppendSignature allocates %.1f times per call, want 0", allocs)
	}
}
