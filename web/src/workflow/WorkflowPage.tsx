/**
 * A project's workflow: its statuses (the board's columns) and who may move a task from which to
 * which. Admins and owners edit it; the whole new workflow is saved at once, with the version read
 * (If-Match), so two admins never overwrite each other unknowingly.
 */
import { getProject } from '../api/projects.ts';
import { useState } from 'react';
import { LoadFailed, Loading, Notice } from '../components/Alerts.tsx';
import { PageHeading } from '../components/PageHeading.tsx';
import { useLoad } from '../hooks/useAsync.ts';
import { ProjectTabs } from '../pages/ProjectTabs.tsx';
import { mayChangeWorkflows } from '../permissions.ts';
import { useUser } from '../session.tsx';
import { loadWorkflow } from '../api/workflow.ts';
import { WorkflowEditor } from './WorkflowEditor.tsx';
import { WorkflowSummary } from './WorkflowSummary.tsx';

export function WorkflowPage({ projectId }: { projectId: string }) {
  const user = useUser();
  const loaded = useLoad(async () => {
    const [project, workflow] = await Promise.all([getProject(projectId), loadWorkflow(projectId)]);
    return { project, workflow };
  }, [projectId]);
  const [notice, setNotice] = useState<string | null>(null);
  if (loaded.status === 'loading') return <Loading what="the workflow" />;
  if (loaded.status === 'error') {
    return (
      <>
        <PageHeading title="Workflow" />
        <LoadFailed error={loaded.error} retry={loaded.reload} />
      </>
    );
  }
  const { project, workflow } = loaded.data;
  return (
    <>
      <PageHeading title={`${project.name} workflow`}>
        <span className="heading-key">{project.key}</span> {project.name}: workflow
      </PageHeading>
      <ProjectTabs project={project} current="workflow" />
      {notice ? <Notice>{notice}</Notice> : null}
      {mayChangeWorkflows(user.role) ? (
        <WorkflowEditor key={workflow.version} workflow={workflow} onSaved={(next, message) => {
            setNotice(message);
            loaded.set((d) => ({ ...d, workflow: next }));
          }} />
      ) : (
        <WorkflowSummary workflow={workflow} />
      )}
    </>
  );
}
