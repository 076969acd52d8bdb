package config

import (
	"strings"
	"testing"
)

func TestLoadFunctionDigest(t *testing.T) {
	tests := []struct {
		name    string
		env     map[string]string
		need    []string
		want    [3]any // DigestKeyID, DigestBucket, DigestRetentionDays
		wantErr []string
	}{
		{name: "set by template.yaml",
			env:  map[string]string{EnvDigestKeyID: " 1234abcd-12ab-34cd-56ef-1234567890ab ", EnvDigestBucket: "stack-digestbucket-x", EnvDigestRetentionDays: "30"},
			need: []string{EnvDigestKeyID, EnvDigestBucket},
			want: [3]any{"1234abcd-12ab-34cd-56ef-1234567890ab", "stack-digestbucket-x", 30}},
		{name: "retention defaults to seven years",
			env:  map[string]string{EnvDigestKeyID: "k", EnvDigestBucket: "b"},
			want: [3]any{"k", "b", DefaultDigestRetentionDays}},
		{name: "not needed, not set", env: map[string]string{},
			want: [3]any{"", "", DefaultDigestRetentionDays}},
		{name: "needed but missing", env: map[string]string{EnvDigestBucket: "b"},
			need: []string{EnvDigestKeyID, EnvDigestBucket}, wantErr: []string{EnvDigestKeyID}},
		{name: "bad retention", env: map[string]string{EnvDigestRetentionDays: "7y"}, wantErr: []string{EnvDigestRetentionDays}},
		{name: "zero retention", env: map[string]string{EnvDigestRetentionDays: "0"}, wantErr: []string{EnvDigestRetentionDays}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := LoadFunction(env(tt.env), tt.need...)
			if len(tt.wantErr) > 0 {
				for _, w := range tt.wantErr {
					if err == nil || !strings.Contains(err.Error(), w) {
						t.Errorf("LoadFunction(%v) error = %v, want one naming %s", tt.env, err, w)
					}
				}
				if err != nil && strings.Contains(err.Error(), EnvDigestBucket) {
					t.Errorf("LoadFunction(%v) error = %v, names %s, which is set", tt.env, err, EnvDigestBucket)
				}
				return
			}
			if err != nil {
				t.Fatalf("LoadFunction(%v) error = %v", tt.env, err)
			}
			if got := [3]any{f.DigestKeyID, f.DigestBucket, f.DigestRetentionDays}; got != tt.want {
				t.Errorf("LoadFunction(%v) digest = %v, want %v", tt.env, got, tt.want)
			}
		})
	}
}
