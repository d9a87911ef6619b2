//! Device buffers: uniform and storage buffers, bind groups, and reading a buffer
//! back to the host.

use super::GpuContext;
use crate::error::{Error, Result};
use bytemuck::Pod;

impl GpuContext {
    /// A uniform buffer for one `T`, written with `queue.write_buffer`.
    pub(crate) fn uniform<T>(&self, label: &str) -> wgpu::Buffer {
        self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(label),
            size: std::mem::size_of::<T>() as u64,
            usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        })
    }

    pub(crate) fn storage(&self, label: &str, bytes: u64) -> wgpu::Buffer {
        self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(label),
            size: bytes.max(4).div_ceil(4) * 4,
            usage: wgpu::BufferUsages::STORAGE
                | wgpu::BufferUsages::COPY_DST
                | wgpu::BufferUsages::COPY_SRC,
            mapped_at_creation: false,
        })
    }

    /// Writes `bytes` at the start of `buf` (queued: it lands before the next submit).
    pub(crate) fn upload(&self, buf: &wgpu::Buffer, bytes: &[u8]) {
        self.queue.write_buffer(buf, 0, bytes);
    }

    pub(crate) fn read<T: Pod>(&self, buf: &wgpu::Buffer, n: usize) -> Result<Vec<T>> {
        let bytes = (n * std::mem::size_of::<T>()) as u64;
        if bytes == 0 {
            return Ok(Vec::new());
        }
        let staging = self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("readback"),
            size: bytes.div_ceil(4) * 4,
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let mut enc = self
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                label: Some("readback"),
            });
        enc.copy_buffer_to_buffer(buf, 0, &staging, 0, bytes.div_ceil(4) * 4);
        self.queue.submit([enc.finish()]);
        let slice = staging.slice(..);
        let (tx, rx) = std::sync::mpsc::channel();
        slice.map_async(wgpu::MapMode::Read, move |r| {
            let _ = tx.send(r);
        });
        self.device
            .poll(wgpu::PollType::wait_indefinitely())
            .map_err(|e| Error::Backend(format!("GPU wait failed (device lost?): {e}")))?;
        rx.recv()
            .map_err(|_| Error::Backend("GPU readback never completed".into()))?
            .map_err(|e| Error::Backend(format!("GPU readback failed: {e}")))?;
        let view = slice
            .get_mapped_range()
            .map_err(|e| Error::Backend(format!("GPU readback mapping failed: {e}")))?;
        let out: Vec<T> = bytemuck::cast_slice(&view[..bytes as usize]).to_vec();
        drop(view);
        staging.unmap();
        // Freed now rather than at the next maintenance (lavapipe's memory grew
        // steadily over long streamed runs otherwise).
        staging.destroy();
        Ok(out)
    }

    pub(crate) fn bind(
        &self,
        pipeline: &wgpu::ComputePipeline,
        label: &str,
        buffers: &[(u32, &wgpu::Buffer)],
    ) -> wgpu::BindGroup {
        let layout = pipeline.get_bind_group_layout(0);
        let entries: Vec<wgpu::BindGroupEntry> = buffers
            .iter()
            .map(|&(binding, b)| wgpu::BindGroupEntry {
                binding,
                resource: b.as_entire_binding(),
            })
            .collect();
        self.device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some(label),
            layout: &layout,
            entries: &entries,
        })
    }
}
