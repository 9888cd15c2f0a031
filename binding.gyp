# node-gyp's path into the one canonical build (CMakeLists.txt). `node-gyp rebuild` runs cmake-js
# into build/cmake and copies the addon to build/Release, where node-gyp-build looks for it, so
# tools that only know node-gyp (node-gyp-build's fallback, `npx node-gyp rebuild`) produce the same
# binary as `npm run build:native`. package.json sets "gypfile": false so npm never runs it by itself.
{
  "targets": [
    {
      "target_name": "ov_diffusion_cmake",
      "type": "none",
      "actions": [
        {
          "action_name": "cmake_js_build",
          "inputs": ["CMakeLists.txt"],
          "outputs": ["<(PRODUCT_DIR)/ov-diffusion.node"],
          "action": ["node", "<(module_root_dir)/scripts/cmake-js-as-node-gyp.js", "--from-gyp", "<(PRODUCT_DIR)"]
        }
      ]
    }
  ]
}
