{
  "targets": [
    {
      "target_name": "fused_mlp",
      "sources": ["src/addon.cc"],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=8", "NAPI_DISABLE_CPP_EXCEPTIONS", "NODE_ADDON_API_DISABLE_DEPRECATED"],
      "cflags_cc": ["-std=gnu++17", "-ffp-contract=off", "-fno-math-errno"],
      "xcode_settings": { "OTHER_CPLUSPLUSFLAGS": ["-ffp-contract=off", "-fno-math-errno"] }
    }
  ]
}
