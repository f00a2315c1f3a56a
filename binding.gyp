{
  "targets": [
    {
      "target_name": "mana_native",
      "sources": [
        "native/addon/addon.cc",
        "native/image/image_write.c",
        "native/image/image_read.c",
        "native/image/image_common.c"
      ],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")", "native/include"],
      "defines": ["NAPI_VERSION=8", "NAPI_CPP_EXCEPTIONS", "_GNU_SOURCE"],
      "cflags_c": ["-std=c11", "-Wall", "-Wextra", "-Werror", "-O2"],
      "cflags_cc": ["-std=c++17", "-Wall", "-Wextra", "-Werror", "-O2", "-fexceptions"],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions", "-std=gnu++17"],
      "libraries": ["-lzstd"]
    }
  ]
}
